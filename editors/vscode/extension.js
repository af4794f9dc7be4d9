// Starts `gendsl lsp` (the language server built on gendsl's own front end) for .gen files.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("gendsl").get("command");
  client = new LanguageClient(
    "gendsl",
    "gendsl language server",
    { command, args },
    { documentSelector: [{ scheme: "file", language: "gen" }] }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
