// Parse Mermaid blocks with Mermaid's own parser (used by tests/test_plots_mermaid.py).
// Reads a JSON array of diagram texts on stdin; writes a JSON array of
// {"ok": bool, "type": string|null, "error": string|null} on stdout.
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;

const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const text of JSON.parse(input)) {
  try {
    const parsed = await mermaid.parse(text);
    results.push({ ok: true, type: parsed ? parsed.diagramType : null, error: null });
  } catch (err) {
    results.push({ ok: false, type: null, error: String(err && err.message ? err.message : err) });
  }
}
process.stdout.write(JSON.stringify(results));
