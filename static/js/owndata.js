// A learner's own points from a CSV file (issue 12): picked with the button or dropped on
// the page, read as text here and sent as one `load_csv` command. The server parses and
// checks the file (app/csvdata.py): its reply is the new state, or an error naming the line
// at fault, shown beside the button; the session keeps its data until a file is accepted.
// A dropped .json file is an exported run and goes to the import instead.

export class OwnData {
  constructor(root, { onCsv, onJson, onError, limits }) {
    this.root = root;
    this.handlers = { onCsv, onJson, onError };
    this.limits = limits; // () => the hello's limits (max_message_bytes)
    this.task = root.querySelector("#csv-task");
    this.file = root.querySelector("#csv-file");
    this.taskChosen = false; // the learner picked the task: syncing leaves it alone
    this.task.addEventListener("change", () => { this.taskChosen = true; });
    root.querySelector("#csv-pick").addEventListener("click", () => this.file.click());
    this.file.addEventListener("change", () => {
      const file = this.file.files && this.file.files[0];
      this.file.value = ""; // the same file may be picked again after an edit
      if (file) this.read(file);
    });
    this.bindDrop();
  }

  // The page is the drop target: a file dropped anywhere is read, nothing navigates away.
  bindDrop() {
    const carriesFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes("Files");
    let depth = 0; // dragenter/dragleave pairs of nested elements
    document.addEventListener("dragenter", (event) => {
      if (!carriesFiles(event)) return;
      depth += 1;
      document.body.classList.add("dropping");
    });
    document.addEventListener("dragleave", (event) => {
      if (!carriesFiles(event)) return;
      depth = Math.max(0, depth - 1);
      if (!depth) document.body.classList.remove("dropping");
    });
    document.addEventListener("dragover", (event) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    document.addEventListener("drop", (event) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      depth = 0;
      document.body.classList.remove("dropping");
      const file = event.dataTransfer.files[0];
      if (file) this.read(file);
    });
  }

  async read(file) {
    let text;
    try {
      text = await file.text();
    } catch (error) {
      this.handlers.onError(`${file.name} could not be read: ${error.message}`);
      return;
    }
    if (/\.json$/i.test(file.name)) {
      this.handlers.onJson(text);
      return;
    }
    const message = { type: "load_csv", task: this.task.value, name: file.name.slice(0, 200), text };
    const limit = (this.limits() || {}).max_message_bytes;
    const bytes = new TextEncoder().encode(JSON.stringify(message)).length;
    if (limit && bytes > limit) {
      const kb = (n) => `${Math.ceil(n / 1024)} kB`;
      this.handlers.onError(`${file.name} is ${kb(bytes)} as a message, and this server takes at most ${kb(limit)}: use fewer points.`);
      return;
    }
    this.handlers.onCsv(message);
  }

  // The session's task suggests what a file's last column holds, until the learner says.
  sync(network) {
    if (this.taskChosen || !network) return;
    this.task.value = network.task === "regression" ? "regression" : "classification";
  }
}
