// Tokenize .gen files with VS Code's own TextMate engine (vscode-textmate + vscode-oniguruma).
//   node scripts/scopes.js FILE...          -> JSON: per file, per line, [text, innermost scope]
//   node scripts/scopes.js --html FILE...   -> a standalone HTML page of the highlighted files
//                                              (the same page as scripts/preview.js FILE...)
const fs = require("fs");
const { loadGrammar, tokenize } = require("./textmate");
const { renderPage } = require("./preview");

loadGrammar().then((grammar) => {
  const html = process.argv[2] === "--html";
  const files = process.argv.slice(html ? 3 : 2);
  const out = Object.fromEntries(files.map((f) => [f, tokenize(grammar, fs.readFileSync(f, "utf8"))]));
  if (!html) return console.log(JSON.stringify(out));
  process.stdout.write(renderPage(out));
});
