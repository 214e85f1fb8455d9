// The page: upload a mesh to /classify, show its views, label, vote and nearest shapes.
"use strict";

const $ = (selector) => document.querySelector(selector);
const keyInput = $("#api-key");
const rememberKey = $("#remember-key");
// The key stays in this page's memory; only when asked is it kept on this device.
keyInput.value = localStorage.getItem("gmvit-api-key") || "";
rememberKey.checked = keyInput.value !== "";
function storeKey() {
  if (rememberKey.checked && keyInput.value) {
    localStorage.setItem("gmvit-api-key", keyInput.value);
  } else {
    localStorage.removeItem("gmvit-api-key");
  }
}
keyInput.addEventListener("change", storeKey);
rememberKey.addEventListener("change", storeKey);
let lastFile = null;

async function showFormats() {
  try {
    const formats = await (await fetch("/formats")).json();
    $("#file-input").accept = formats.extensions.join(",");
    $("#formats").textContent = formats.extensions.join(" ");
  } catch (_) {
    $("#formats").textContent = "(the server does not answer)";
  }
}
showFormats();

function headers() {
  return keyInput.value ? { "X-API-Key": keyInput.value } : {};
}

async function call(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers() });
  const body = response.headers.get("content-type")?.includes("json")
    ? await response.json() : null;
  if (!response.ok) {
    throw new Error((body && body.detail) || `${response.status} ${response.statusText}`);
  }
  return body;
}

function showError(message) {
  $("#error").textContent = message;
  $("#error").hidden = !message;
}

// Thumbnails go through fetch so that a server with a read key still shows them.
async function thumbnail(img, url) {
  try {
    const response = await fetch(url, { headers: headers() });
    if (response.ok) img.src = URL.createObjectURL(await response.blob());
  } catch (_) { /* a missing thumbnail leaves an empty frame */ }
}

function render(result, file) {
  $("#label").textContent = result.label ?? "I don't know";
  $("#reason").textContent = result.reason;
  $("#vote-label").textContent = result.neighbors.label ?? "(no labelled shapes indexed)";
  $("#votes").textContent = Object.entries(result.neighbors.votes)
    .map(([label, count]) => `${label}: ${count}`).join(", ");
  $("#views img").src = result.views_png;
  $("#file-name").textContent = file.name;
  const rows = $("#probabilities tbody");
  rows.replaceChildren(...result.probabilities.map((p) => {
    const row = document.createElement("tr");
    row.innerHTML = "<td></td><td></td>";
    row.cells[0].textContent = p.label;
    row.cells[1].textContent = `${(100 * p.probability).toFixed(1)} %`;
    return row;
  }));
  $("#neighbors").replaceChildren(...result.neighbors.shapes.map((shape) => {
    const item = document.createElement("li");
    item.className = "neighbor";
    const img = document.createElement("img");
    img.alt = shape.name;
    thumbnail(img, shape.thumbnail_url);
    const caption = document.createElement("div");
    caption.textContent = `${shape.label ?? "—"} · ${shape.score.toFixed(3)} · ${shape.name}`;
    item.append(img, caption);
    return item;
  }));
  $("#timings").textContent = "timings (ms): " + Object.entries(result.timings_ms)
    .map(([stage, ms]) => `${stage} ${ms}`).join(", ");
  $("#add-result").textContent = "";
  $("#result").hidden = false;
}

async function classify(file) {
  lastFile = file;
  showError("");
  $("#result").hidden = true;
  $("#busy").hidden = false;
  const form = new FormData();
  form.append("file", file);
  form.append("top_k", $("#top-k").value || "5");
  try {
    render(await call("/classify", { method: "POST", body: form }), file);
  } catch (error) {
    showError(`${file.name}: ${error.message}`);
  } finally {
    $("#busy").hidden = true;
  }
}

$("#file-input").addEventListener("change", (event) => {
  if (event.target.files.length) classify(event.target.files[0]);
});
const zone = $("#drop-zone");
zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  zone.classList.remove("over");
  if (event.dataTransfer.files.length) classify(event.dataTransfer.files[0]);
});

$("#add-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!lastFile) return;
  const form = new FormData();
  form.append("file", lastFile);
  if ($("#add-label").value) form.append("label", $("#add-label").value);
  try {
    const added = await call("/shapes", { method: "POST", body: form });
    $("#add-result").textContent = added.duplicate
      ? `already indexed as shape ${added.id}` : `added as shape ${added.id}`;
    refreshStatus();
  } catch (error) {
    $("#add-result").textContent = error.message;
  }
});

async function refreshStatus() {
  try {
    const ready = await (await fetch("/readyz")).json();
    $("#status").textContent = `${ready.shapes ?? 0} shapes indexed · model ${ready.model_id}` +
      (ready.random_weights ? " (random weights: labels are meaningless)" : "");
  } catch (_) {
    $("#status").textContent = "the server does not answer";
  }
}
refreshStatus();
