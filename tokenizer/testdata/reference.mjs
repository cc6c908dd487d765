// Encodes the corpus with the JS reference tokenizer (@lenml/tokenizers, a
// fork of transformers.js) and prints one JSON object on stdout.
// Usage: FOUNDRY_NPM_DIR=/path/to/npm node reference.mjs corpus.jsonl model...
// Each model is a package suffix (qwen3, llama3, llama2, gemma3) or a
// variant from variants.json: a package's files with some sections replaced,
// to check normalizers, pre-tokenizers and decoders no shipped file uses.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const npm = process.env.FOUNDRY_NPM_DIR;
if (!npm) throw new Error("FOUNDRY_NPM_DIR is not set");
const nm = path.join(npm, "node_modules");
const { TokenizerLoader } = await import(pathToFileURL(path.join(nm, "@lenml/tokenizers/dist/main.mjs")).href);

const [corpusPath, ...models] = process.argv.slice(2);
const texts = fs.readFileSync(corpusPath, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l).text);

const variants = JSON.parse(fs.readFileSync(path.join(path.dirname(corpusPath), "variants.json"), "utf8"));
delete variants._comment;
const out = {};
for (const m of models) {
  const variant = variants[m];
  const dir = path.join(nm, "@lenml/tokenizer-" + (variant ? variant.base : m), "models");
  const tokenizerJSON = { ...JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")), ...(variant?.patch ?? {}) };
  const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
  const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
  out[m] = texts.map((t) => {
    const special = tok.encode(t, { add_special_tokens: true });
    return {
      special,
      plain: tok.encode(t, { add_special_tokens: false }),
      decoded: special.length ? tok.decode(special, { skip_special_tokens: false, clean_up_tokenization_spaces: false }) : "",
      decoded_skip: special.length ? tok.decode(special, { skip_special_tokens: true, clean_up_tokenization_spaces: false }) : "",
    };
  });
}
process.stdout.write(JSON.stringify(out));
