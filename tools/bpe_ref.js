// Reference token ids from Hugging Face's own Rust library (npm package `tokenizers`, a
// native module) and from `tiktoken`, for tools/make_bpe_refs.py and bench/bench_bpe.py.
//
// usage: NODE_PATH=DIR/node_modules node tools/bpe_ref.js < request.json > answer.json
//
// request: {"files": {name: path}, "texts": [string], "tiktoken": true|false,
//           "bench": {"text": path, "repeat": n} (optional)}
// answer:  {"ids": {name: [[id...] per text]},
//           "decoded": {name: [string per text]}, "tiktoken_gpt2": [[id...] per text],
//           "bench": {name: seconds, "tiktoken_gpt2": seconds, "cpu": {same, CPU seconds},
//                     "tokens": {same, token counts}}}
// Encoding is tokenizers' encode(text, null, {addSpecialTokens: false}) and tiktoken's
// get_encoding("gpt2").encode(text, "all"); decoding is decode(ids, false).
"use strict";
const fs = require("fs");

async function main() {
  const req = JSON.parse(fs.readFileSync(0, "utf8"));
  const { Tokenizer } = require("tokenizers");
  const out = { ids: {}, decoded: {} };
  const toks = {};
  for (const [name, file] of Object.entries(req.files || {})) {
    const t = Tokenizer.fromFile(file);
    toks[name] = t;
    out.ids[name] = [];
    out.decoded[name] = [];
    for (const text of req.texts || []) {
      const e = await t.encode(text, null, { addSpecialTokens: false });
      const ids = Array.from(e.getIds());
      out.ids[name].push(ids);
      out.decoded[name].push(await t.decode(ids, false));
    }
  }
  let enc = null;
  if (req.tiktoken || req.bench) {
    const { get_encoding } = require("tiktoken");
    enc = get_encoding("gpt2");
    out.tiktoken_gpt2 = (req.texts || []).map((s) => Array.from(enc.encode(s, "all")));
  }
  if (req.bench) {
    // One thread each: tokenizers' encode of one string runs on the calling thread, and
    // tiktoken is WebAssembly. Best of `repeat` runs, wall-clock and CPU seconds (the
    // process's user + system time, which a loaded machine does not inflate).
    const text = fs.readFileSync(req.bench.text, "utf8");
    out.bench = { tokens: {}, cpu: {} };
    const time = async (name, f) => {
      let best = Infinity, bestCpu = Infinity;
      for (let r = 0; r < req.bench.repeat; r++) {
        const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
        const n = await f();
        const dt = Number(process.hrtime.bigint() - t0) / 1e9, dc = process.cpuUsage(c0);
        best = Math.min(best, dt);
        bestCpu = Math.min(bestCpu, (dc.user + dc.system) / 1e6);
        out.bench.tokens[name] = n;
      }
      out.bench[name] = best;
      out.bench.cpu[name] = bestCpu;
    };
    for (const [name, t] of Object.entries(toks)) {
      await time(name, async () => (await t.encode(text, null, { addSpecialTokens: false })).getIds().length);
    }
    await time("tiktoken_gpt2", async () => enc.encode(text, "all").length);
  }
  if (enc) enc.free();
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  process.stderr.write("bpe_ref.js: " + (e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
});
