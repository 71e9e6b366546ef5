// The upload page: one file in, the API's job polled for progress, the result shown beside the input and
// offered for download.  Plain JavaScript, nothing loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 300;
let chosen = null;      // the File to upload
let jobId = null;       // the job being watched
let urls = [];          // object URLs to release when a new picture is chosen

function headers() {
  const token = $("token").value.trim();
  return token ? { Authorization: "Bearer " + token } : {};
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("state").textContent = "";
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch (_) { /* not JSON: fall through */ }
  return "the server answered " + response.status + " " + response.statusText;
}

function choose(file) {
  if (!file) return;
  if (!file.type.startsWith("image/")) {
    showError(file.name + " is not an image; choose a PNG, JPEG, WebP, GIF, BMP or TIFF file");
    return;
  }
  chosen = file;
  $("error").hidden = true;
  $("drop-text").textContent = "Chosen: " + file.name + " (" + Math.ceil(file.size / 1024) + " KB)";
}

function plainName(name) {
  // The server never uses names as paths and refuses path-like ones; a browser sends plain names anyway.
  return (name || "image.png").replace(/[^\w.-]+/g, "_").replace(/\.\.+/g, ".");
}

function formData() {
  const form = new FormData();
  form.append("image", chosen, plainName(chosen.name));
  if ($("model").value) form.append("model", $("model").value);
  const target = $("target").value;
  if (target === "factor") form.append("factor", $("factor").value);
  if (target === "size") {
    if ($("width").value) form.append("width", $("width").value);
    if ($("height").value) form.append("height", $("height").value);
  }
  form.append("sharpen", $("sharpen").value);
  form.append("faces", $("faces").checked ? "true" : "false");
  return form;
}

function busy(on) {
  $("upscale").disabled = on;
  $("cancel").hidden = !on;
}

async function upscale() {
  $("error").hidden = true;
  $("result").hidden = true;
  $("compare-box").hidden = true;
  if (!chosen) { showError("choose a picture first (click the box above, drop a file on it or paste one)"); return; }
  busy(true);
  $("progress").value = 0;
  $("state").textContent = "uploading";
  try {
    const response = await fetch("/v1/upscale", { method: "POST", body: formData(), headers: headers() });
    if (response.status !== 202) { showError(await errorText(response)); return; }
    const job = await response.json();
    jobId = job.id;
    await watch(job);
  } catch (err) {
    showError("the server cannot be reached (" + err.message + "); is it running?");
  } finally {
    busy(false);
    jobId = null;
  }
}

async function watch(job) {
  for (;;) {
    const response = await fetch(job.status_url, { headers: headers() });
    if (!response.ok) { showError(await errorText(response)); return; }
    const status = await response.json();
    $("progress").value = status.progress;
    if (status.status === "queued") $("state").textContent = "waiting, position " + status.queue_position;
    if (status.status === "running") $("state").textContent = "upscaling " + Math.round(status.progress * 100) + "%";
    if (status.status === "done") { await show(job.result_url); return; }
    if (status.status === "failed" || status.status === "cancelled") { showError(status.error || status.status); return; }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

async function show(resultUrl) {
  const response = await fetch(resultUrl, { headers: headers() });
  if (!response.ok) { showError(await errorText(response)); return; }
  const blob = await response.blob();
  urls.forEach(URL.revokeObjectURL);
  const after = URL.createObjectURL(blob), before = URL.createObjectURL(chosen);
  urls = [after, before];
  const extension = { "image/gif": ".gif", "image/webp": ".webp" }[blob.type] || ".png";
  $("result").href = after;
  $("result").download = plainName(chosen.name).replace(/\.[^.]*$/, "") + "_upscaled" + extension;
  $("after").src = after;
  $("before").src = before;
  $("after").onload = () => {
    $("result-size").textContent = $("after").naturalWidth + " x " + $("after").naturalHeight + " px, " +
      Math.ceil(blob.size / 1024) + " KB";
    fitBefore();
  };
  $("progress").value = 1;
  $("state").textContent = "done";
  $("result").hidden = false;
  $("compare-box").hidden = false;
}

function fitBefore() {
  $("before").style.width = $("after").clientWidth + "px";
  $("before-clip").style.width = $("split").value + "%";
}

async function cancel() {
  if (!jobId) return;
  await fetch("/v1/jobs/" + jobId, { method: "DELETE", headers: headers() });
}

async function describeServer() {
  try {
    const health = await (await fetch("/healthz")).json();
    for (const name of health.models) {
      const option = document.createElement("option");
      option.value = option.textContent = name;
      $("model").append(option);
    }
    $("token-row").hidden = !health.token_required;
  } catch (_) {
    showError("the server cannot be reached; is it running?");
  }
}

function wire() {
  const drop = $("drop");
  $("file").addEventListener("change", () => choose($("file").files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    choose(e.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (e) => {
    const item = [...e.clipboardData.items].find((i) => i.kind === "file" && i.type.startsWith("image/"));
    if (item) choose(item.getAsFile());
  });
  $("target").addEventListener("change", () => {
    for (const el of document.querySelectorAll(".target")) el.hidden = !el.classList.contains($("target").value);
  });
  $("sharpen").addEventListener("input", () => { $("sharpen-value").textContent = $("sharpen").value; });
  $("split").addEventListener("input", fitBefore);
  window.addEventListener("resize", fitBefore);
  $("upscale").addEventListener("click", upscale);
  $("cancel").addEventListener("click", cancel);
}

wire();
describeServer();
