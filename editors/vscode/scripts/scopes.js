// Tokenize .gen files with VS Code's own TextMate engine (vscode-textmate + vscode-oniguruma).
//   node scripts/scopes.js FILE...          -> JSON: per file, per line, [text, innermost scope]
//   node scripts/scopes.js --html FILE...   -> a standalone HTML page of the highlighted files
const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const wasm = fs.readFileSync(path.join(require.resolve("vscode-oniguruma"), "..", "onig.wasm")).buffer;
const onigLib = oniguruma.loadWASM(wasm).then(() => ({
  createOnigScanner: (sources) => new oniguruma.OnigScanner(sources),
  createOnigString: (s) => new oniguruma.OnigString(s),
}));
const registry = new vsctm.Registry({
  onigLib,
  loadGrammar: async () => vsctm.parseRawGrammar(
    fs.readFileSync(path.join(__dirname, "..", "syntaxes", "gen.tmLanguage.json"), "utf8"), "gen.tmLanguage.json"),
});

function tokenize(grammar, text) {
  let state = vsctm.INITIAL;
  return text.split("\n").map((line) => {
    const result = grammar.tokenizeLine(line, state);
    state = result.ruleStack;
    return result.tokens.map((t) => [line.slice(t.startIndex, t.endIndex), t.scopes[t.scopes.length - 1]]);
  });
}

const COLOURS = {
  comment: "#6a9955", string: "#ce9178", "constant.numeric": "#b5cea8", "storage.type": "#569cd6",
  "keyword.control": "#c586c0", "keyword.operator": "#d4d4d4", "support.type": "#4ec9b0",
  "support.function": "#dcdcaa", "entity.name.function": "#dcdcaa", "entity.name.variable": "#9cdcfe",
};
const colour = (scope) => Object.entries(COLOURS).find(([k]) => scope.startsWith(k))?.[1] ?? "#d4d4d4";
const escape = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

registry.loadGrammar("source.gen").then((grammar) => {
  const html = process.argv[2] === "--html";
  const files = process.argv.slice(html ? 3 : 2);
  const out = Object.fromEntries(files.map((f) => [f, tokenize(grammar, fs.readFileSync(f, "utf8"))]));
  if (!html) return console.log(JSON.stringify(out));
  const body = Object.entries(out).map(([f, lines]) => `<h3>${escape(f)}</h3><pre>` + lines.map((tokens) =>
    tokens.map(([text, scope]) => `<span style="color:${colour(scope)}" title="${scope}">${escape(text)}</span>`)
      .join("")).join("\n") + "</pre>").join("\n");
  console.log(`<!doctype html><html><body style="background:#1e1e1e;color:#d4d4d4;font:13px monospace">${body}</body></html>`);
});
