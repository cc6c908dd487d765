// Package dataset turns captured traffic and imported files into curated,
// versioned fine-tuning datasets.
//
// A build is a streaming Pipeline: a Source (the store through
// store.ScanRecords, dataset files, or a weighted Mix of them) feeds
// Examples one at a time through Stages — Validate, Dedupe, Scrub, Split,
// and plug-in stages such as a judge — into a version on disk
// (DataDir/datasets/NAME/HASH12/: train.jsonl, val.jsonl, test.jsonl in
// OpenAI fine-tuning format, and manifest.json). Every stage reports rows in,
// rows out and why rows left, with a few examples per reason (the Funnel).
// Only Dedupe keeps per-row state (about 185 bytes a row, outside the Go
// heap; see Dedupe); every other stage holds a bounded window of examples.
//
// # Plug-in stages: judge and best-of-n
//
// The spec's judge: and best_of_n: sections are decoded as plain YAML
// values and handed to BuildOptions.Plugins["judge"] and ["best_of_n"], a
// Plugin each (func(ctx, config any) (Stage, error)); the stages run after
// validate and before dedupe, so dedupe keeps the best row of a cluster by
// feedback score, then by the score the judge set in Example.Meta.JudgeScore. A plug-in
// stage implements Stage: it reads examples from its input channel, and for
// each one calls out.Keep (in input order) or out.Drop with a reason
// ("judge score < 7", "judge answered garbage"), and out.Count for its
// own counters ("judge calls", "judge cost micro-USD", "judge cache hits"). Rows
// in must equal rows kept plus rows dropped, which the pipeline checks. A
// stage that calls a model per row can use RowStage with Workers set to its
// concurrency limit and Batch 1: RowStage runs Decide on that many
// goroutines and still emits in input order. Package dataset/judgestage
// implements both plug-ins with package judge. Without a registered plug-in, a spec that has the
// section fails to build with a message saying so.
//
// # Formats
//
// OpenAI fine-tuning JSONL, ShareGPT, Alpaca (JSON lines) and Parquet are
// read by ReadFile and written by NewWriter. Parquet is written in a flat
// schema (ParquetRow, the conversation as a JSON string) and also read in the
// layouts Hugging Face datasets use (messages as structs, ShareGPT
// conversations, Alpaca columns). A file source may be a Hugging Face dataset
// repo's file or glob, hf://datasets/ORG/NAME[@rev]/PATH, fetched through
// package hub's cache (`foundry pull --dataset` fetches a whole repo).
package dataset
