// The studio's page: pick images, blend and paint regions, set neural-style's settings, follow a job live.
// No build step, nothing fetched from elsewhere: the settings (names, defaults, help) come from GET /settings.
"use strict";

const MAIN = ["width", "iterations", "optimizer", "preserve_colors", "pooling", "seed", "blend_sweep"];
const HIDDEN = ["style_blend_weights"]; // set by the blend sliders
const SWEEP = ["blend_sweep", "blends", "sweep_style_weights"];
const COLOURS = ["#e4572e", "#2450b8", "#17a589", "#f3a712", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d"];
const TERMS = ["content", "style", "tv", "total"];
const TERM_COLOURS = { content: "#1f77b4", style: "#d62728", tv: "#2ca02c", total: "#000000" };
const MASK_WIDTH = 512;

const $ = (id) => document.getElementById(id);
const state = {
  schema: [],
  presets: {},
  content: null, // File
  contentImage: null, // HTMLImageElement
  styles: [], // {file, url, weight}
  layers: [], // one canvas per style: white where it applies
  brush: 0,
  job: null,
  events: null,
  curve: [], // {iteration, losses}
  previewLoading: false,
  previewPending: null,
};

// ------------------------------------------------------------------------------------------- settings form

function fieldId(name) {
  return `setting-${name}`;
}

function makeField(setting) {
  const wrap = document.createElement("div");
  wrap.className = "field";
  const label = document.createElement("label");
  label.htmlFor = fieldId(setting.name);
  label.textContent = setting.name;
  let input;
  if (setting.kind === "boolean") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = Boolean(setting.default);
  } else if (setting.kind === "choice") {
    input = document.createElement("select");
    for (const choice of setting.choices) {
      const option = document.createElement("option");
      option.value = option.textContent = choice;
      input.append(option);
    }
    input.value = String(setting.default);
  } else {
    input = document.createElement("input");
    input.type = setting.kind === "integer" || setting.kind === "number" ? "number" : "text";
    if (input.type === "number") input.step = "any";
    input.placeholder = setting.default === null ? "default" : String(setting.default);
  }
  input.id = fieldId(setting.name);
  input.name = setting.name;
  input.dataset.setting = setting.name;
  const help = document.createElement("small");
  help.id = `${input.id}-help`;
  help.textContent = setting.help;
  input.setAttribute("aria-describedby", help.id);
  input.addEventListener("input", () => wrap.classList.toggle("changed", changed(setting, input)));
  input.addEventListener("change", () => wrap.classList.toggle("changed", changed(setting, input)));
  wrap.append(label, input, help);
  return wrap;
}

function changed(setting, input) {
  if (setting.kind === "boolean") return input.checked !== Boolean(setting.default);
  if (setting.kind === "choice") return input.value !== String(setting.default);
  return input.value.trim() !== "";
}

function settingValues() {
  const values = [];
  for (const setting of state.schema) {
    const input = $(fieldId(setting.name));
    if (!input || !changed(setting, input)) continue;
    const value = setting.kind === "boolean" ? String(input.checked) : input.value.trim();
    values.push([setting.name, value]);
  }
  return values;
}

function setSetting(name, value) {
  const setting = state.schema.find((s) => s.name === name);
  const input = $(fieldId(name));
  if (!setting || !input) return;
  if (setting.kind === "boolean") input.checked = value === true || ["true", "1", ""].includes(String(value).toLowerCase());
  else if (setting.kind === "choice") input.value = String(value);
  else input.value = value === null ? "" : String(value);
  input.dispatchEvent(new Event("change"));
}

function resetSettings() {
  for (const setting of state.schema) {
    setSetting(setting.name, setting.kind === "boolean" || setting.kind === "choice" ? setting.default : null);
  }
}

async function loadSchema() {
  const answer = await fetch("/settings");
  const body = await answer.json();
  state.schema = body.settings.filter((s) => !HIDDEN.includes(s.name));
  state.presets = body.presets;
  const main = $("main-settings");
  const all = $("all-settings");
  for (const name of MAIN) {
    const setting = state.schema.find((s) => s.name === name);
    if (setting) main.append(makeField(setting));
  }
  for (const setting of state.schema) {
    if (!MAIN.includes(setting.name)) all.append(makeField(setting));
  }
}

function applyPreset(name) {
  for (const [key, value] of Object.entries(state.presets[name] || {})) setSetting(key, value);
  $("message").textContent = "";
}

// ------------------------------------------------------------------------------------------- images and styles

function readImage(file) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error(`${file.name} is not an image the browser can show`));
    image.src = URL.createObjectURL(file);
  });
}

async function setContent(file) {
  try {
    state.contentImage = await readImage(file);
  } catch (error) {
    $("message").textContent = error.message;
    return;
  }
  state.content = file;
  const thumb = $("content-thumb");
  thumb.src = state.contentImage.src;
  thumb.alt = `Content: ${file.name}`;
  thumb.hidden = false;
  resetPaint();
}

function addStyles(files) {
  for (const file of files) {
    state.styles.push({ file, url: URL.createObjectURL(file), weight: 50 });
  }
  renderStyles();
  resetPaint(true);
}

// The colour that marks style i: its swatch, and its strokes on the painted regions.
function styleColour(i) {
  return COLOURS[i % COLOURS.length];
}

function swatchOf(i) {
  const swatch = document.createElement("span");
  swatch.className = "swatch";
  swatch.style.background = styleColour(i);
  return swatch;
}

// Fills the list `id` with one element per style, made by render(style, i).
function renderPerStyle(id, render) {
  $(id).replaceChildren(...state.styles.map(render));
}

function renderStyles() {
  renderPerStyle("style-list", (style, i) => {
    const item = document.createElement("li");
    const image = document.createElement("img");
    image.src = style.url;
    image.alt = `Style ${i + 1}: ${style.file.name}`;
    const label = document.createElement("label");
    label.htmlFor = `blend-${i}`;
    label.textContent = ` Blend weight of style ${i + 1} `;
    const slider = document.createElement("input");
    slider.type = "range";
    slider.min = "0";
    slider.max = "100";
    slider.value = String(style.weight);
    slider.id = `blend-${i}`;
    const output = document.createElement("output");
    output.htmlFor = slider.id;
    output.id = `blend-${i}-value`;
    const show = () => {
      style.weight = Number(slider.value);
      output.textContent = blendShare(i);
      state.styles.forEach((_, k) => {
        const other = $(`blend-${k}-value`);
        if (other) other.textContent = blendShare(k);
      });
    };
    slider.addEventListener("input", show);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove style ${i + 1}`);
    remove.addEventListener("click", () => {
      state.styles.splice(i, 1);
      state.layers.splice(i, 1);
      renderStyles();
      renderBrushes();
      drawPaint();
    });
    item.append(swatchOf(i), image, label, slider, output, remove);
    output.textContent = blendShare(i);
    return item;
  });
  renderBrushes();
}

function blendShare(i) {
  const sum = state.styles.reduce((total, s) => total + s.weight, 0);
  return sum > 0 ? `${Math.round((100 * state.styles[i].weight) / sum)}%` : "-";
}

function setupDrop(zone, onFiles) {
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    onFiles([...event.dataTransfer.files]);
  });
}

// ------------------------------------------------------------------------------------------- painted regions

function renderBrushes() {
  renderPerStyle("brush-list", (style, i) => {
    const label = document.createElement("label");
    const radio = document.createElement("input");
    radio.type = "radio";
    radio.name = "brush";
    radio.value = String(i);
    radio.id = `brush-${i}`;
    radio.checked = state.brush === i;
    radio.addEventListener("change", () => (state.brush = i));
    label.append(radio, " ", swatchOf(i), ` Style ${i + 1}`);
    return label;
  });
  if (state.brush !== "erase" && state.brush >= state.styles.length) state.brush = 0;
}

function resetPaint(keep) {
  const canvas = $("paint-canvas");
  if (state.contentImage) {
    const width = Math.min(MASK_WIDTH, state.contentImage.naturalWidth);
    canvas.width = width;
    canvas.height = Math.max(1, Math.round((width * state.contentImage.naturalHeight) / state.contentImage.naturalWidth));
  }
  const layers = [];
  state.styles.forEach((_, i) => {
    const layer = document.createElement("canvas");
    layer.width = canvas.width;
    layer.height = canvas.height;
    const old = keep ? state.layers[i] : null;
    if (old && old.width === layer.width && old.height === layer.height) layer.getContext("2d").drawImage(old, 0, 0);
    layers.push(layer);
  });
  state.layers = layers;
  drawPaint();
}

function painted(layer) {
  const data = layer.getContext("2d").getImageData(0, 0, layer.width, layer.height).data;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) return true;
  return false;
}

function drawPaint() {
  const canvas = $("paint-canvas");
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  if (state.contentImage) context.drawImage(state.contentImage, 0, 0, canvas.width, canvas.height);
  state.layers.forEach((layer, i) => {
    const tint = document.createElement("canvas");
    tint.width = layer.width;
    tint.height = layer.height;
    const t = tint.getContext("2d");
    t.drawImage(layer, 0, 0);
    t.globalCompositeOperation = "source-in";
    t.fillStyle = styleColour(i);
    t.fillRect(0, 0, tint.width, tint.height);
    context.globalAlpha = 0.5;
    context.drawImage(tint, 0, 0);
    context.globalAlpha = 1;
  });
}

function paintAt(x, y) {
  const radius = Number($("brush-size").value);
  const targets = state.brush === "erase" ? state.layers : [state.layers[state.brush]];
  for (const layer of targets) {
    if (!layer) continue;
    const context = layer.getContext("2d");
    context.globalCompositeOperation = state.brush === "erase" ? "destination-out" : "source-over";
    context.fillStyle = "#fff";
    context.beginPath();
    context.arc(x, y, radius, 0, 2 * Math.PI);
    context.fill();
  }
  drawPaint();
}

function setupPainting() {
  const canvas = $("paint-canvas");
  let down = false;
  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return [((event.clientX - box.left) * canvas.width) / box.width, ((event.clientY - box.top) * canvas.height) / box.height];
  };
  canvas.addEventListener("pointerdown", (event) => {
    if (!state.layers.length) return;
    down = true;
    canvas.setPointerCapture(event.pointerId);
    paintAt(...point(event));
  });
  canvas.addEventListener("pointermove", (event) => down && paintAt(...point(event)));
  canvas.addEventListener("pointerup", () => (down = false));
  canvas.addEventListener("pointercancel", () => (down = false));
  $("brush-erase").addEventListener("change", () => (state.brush = "erase"));
  $("clear-regions").addEventListener("click", () => resetPaint(false));
  $("fill-region").addEventListener("click", () => {
    const targets = state.brush === "erase" ? state.layers : [state.layers[state.brush]];
    for (const layer of targets) {
      if (!layer) continue;
      const context = layer.getContext("2d");
      if (state.brush === "erase") context.clearRect(0, 0, layer.width, layer.height);
      else {
        context.fillStyle = "#fff";
        context.fillRect(0, 0, layer.width, layer.height);
      }
    }
    drawPaint();
  });
}

function maskBlob(layer) {
  const mask = document.createElement("canvas");
  mask.width = layer.width;
  mask.height = layer.height;
  const context = mask.getContext("2d");
  context.fillStyle = "#000";
  context.fillRect(0, 0, mask.width, mask.height);
  context.drawImage(layer, 0, 0);
  return new Promise((resolve) => mask.toBlob(resolve, "image/png"));
}

// ------------------------------------------------------------------------------------------- jobs

async function startJob(event) {
  event.preventDefault();
  const message = $("message");
  message.textContent = "";
  if (!state.content) return (message.textContent = "Choose a content image first.");
  if (!state.styles.length) return (message.textContent = "Choose one or more style images first.");
  const form = new FormData();
  form.append("content", state.content, state.content.name);
  for (const style of state.styles) form.append("styles", style.file, style.file.name);
  if (state.layers.some(painted)) {
    for (let i = 0; i < state.layers.length; i++) form.append("masks", await maskBlob(state.layers[i]), `mask-${i + 1}.png`);
  }
  const values = settingValues();
  const sweeping = values.some(([name]) => SWEEP.includes(name));
  if (state.styles.length > 1 && !sweeping) {
    form.append("style_blend_weights", state.styles.map((s) => String(s.weight)).join(","));
  }
  for (const [name, value] of values) form.append(name, value);
  $("start").disabled = true;
  let answer;
  try {
    answer = await fetch("/jobs", { method: "POST", body: form });
  } catch (error) {
    message.textContent = `The server did not answer: ${error.message}`;
    $("start").disabled = false;
    return;
  }
  const body = await answer.json();
  $("start").disabled = false;
  if (answer.status !== 201) {
    message.textContent = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    return;
  }
  follow(body);
}

function follow(job) {
  if (state.events) state.events.close();
  state.job = job;
  state.curve = [];
  $("sweep-grid").replaceChildren();
  $("download").hidden = true;
  $("cancel").disabled = false;
  const preview = $("preview");
  preview.dataset.loads = "0";
  showJob(job);
  const events = new EventSource(`/jobs/${job.id}/events`);
  state.events = events;
  events.addEventListener("job", (e) => {
    const current = JSON.parse(e.data);
    showJob(current);
    if (["done", "failed", "cancelled"].includes(current.state)) {
      events.close();
      finished(current);
    }
  });
  events.addEventListener("progress", (e) => progress(JSON.parse(e.data)));
  events.addEventListener("preview", (e) => showPreview(JSON.parse(e.data).version));
  events.addEventListener("state", (e) => {
    const data = JSON.parse(e.data);
    state.job.state = data.state;
    $("status").textContent = describe(state.job);
  });
}

function describe(job) {
  let text = `Job ${job.id}: ${job.state}`;
  if (job.iterations) text += `, iteration ${job.iteration} of ${job.iterations}`;
  if (job.time_left) text += `, about ${Math.round(job.time_left)} s left`;
  if (job.losses && job.losses.total != null) text += `, saved image's loss ${formatNumber(job.losses.total)}`;
  if (job.error) text += `: ${job.error}`;
  return `${text}.`;
}

function formatNumber(value) {
  return Number(value).toPrecision(4);
}

function showJob(job) {
  Object.assign(state.job, job);
  $("status").textContent = describe(state.job);
  const bar = $("progress");
  bar.max = Math.max(1, job.iterations || 1);
  bar.value = job.iteration || 0;
}

function progress(data) {
  state.job.iteration = data.iteration;
  state.job.iterations = data.iterations;
  state.job.time_left = data.time_left;
  if (data.image_losses) state.job.losses = data.image_losses;
  showJob(state.job);
  if (data.losses) {
    state.curve.push({ iteration: data.iteration, losses: data.losses });
    drawCurve();
  }
}

function showPreview(version) {
  const preview = $("preview");
  const url = `/jobs/${state.job.id}/image?v=${version}`;
  if (state.previewLoading) {
    state.previewPending = url;
    return;
  }
  state.previewLoading = true;
  preview.src = url;
}

function setupPreview() {
  const preview = $("preview");
  const next = () => {
    state.previewLoading = false;
    if (state.previewPending) {
      const url = state.previewPending;
      state.previewPending = null;
      state.previewLoading = true;
      preview.src = url;
    }
  };
  preview.addEventListener("load", () => {
    preview.hidden = false;
    preview.dataset.loads = String(Number(preview.dataset.loads || "0") + 1);
    $("preview-caption").textContent = `Iteration ${state.job ? state.job.iteration : ""}`;
    next();
  });
  preview.addEventListener("error", next);
}

function finished(job) {
  $("cancel").disabled = true;
  state.previewPending = null;
  if (job.state !== "failed" || job.files.length) showPreview(`final-${Date.now()}`);
  const download = $("download");
  const result = job.kind === "sweep" ? "result_sheet.png" : "result.png";
  if (job.files.includes(result)) {
    download.href = `/jobs/${job.id}/files/${result}`;
    download.download = `neural-style-${job.id}.png`;
    download.hidden = false;
  }
  if (job.kind === "sweep") showSweep(job);
  loadGallery();
}

function showSweep(job) {
  const grid = $("sweep-grid");
  grid.replaceChildren();
  for (const candidate of job.candidates || []) {
    if (!candidate.file) continue;
    const figure = document.createElement("figure");
    const image = document.createElement("img");
    image.src = `/jobs/${job.id}/files/${candidate.file}`;
    image.alt = `Candidate ${candidate.label}`;
    const caption = document.createElement("figcaption");
    caption.textContent = candidate.losses ? `${candidate.label}: loss ${formatNumber(candidate.losses.total)}` : candidate.label;
    figure.append(image, caption);
    grid.append(figure);
  }
}

async function cancelJob() {
  if (!state.job) return;
  const answer = await fetch(`/jobs/${state.job.id}`, { method: "DELETE" });
  if (answer.status !== 202) $("message").textContent = (await answer.json()).detail;
}

// ------------------------------------------------------------------------------------------- the loss curve

function drawCurve() {
  const canvas = $("curve");
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  const series = [];
  const last = state.curve[state.curve.length - 1];
  const terms = last && TERMS.every((t) => t in last.losses) ? TERMS : ["total"];
  for (const term of terms) {
    const count = Math.max(...state.curve.map((p) => (p.losses[term] ? p.losses[term].length : 0)));
    for (let k = 0; k < count; k++) {
      series.push({ term, points: state.curve.filter((p) => p.losses[term] && p.losses[term][k] > 0).map((p) => [p.iteration, p.losses[term][k]]) });
    }
  }
  const values = series.flatMap((s) => s.points.map((p) => Math.log10(p[1])));
  if (!values.length) return;
  const lo = Math.floor(Math.min(...values));
  const hi = Math.max(lo + 1, Math.ceil(Math.max(...values)));
  const xMax = Math.max(1, ...state.curve.map((p) => p.iteration));
  const left = 44;
  const bottom = 18;
  const x = (i) => left + ((width - left - 8) * i) / xMax;
  const y = (v) => 6 + ((height - bottom - 6) * (hi - Math.log10(v))) / (hi - lo);
  context.strokeStyle = "#ccc";
  context.fillStyle = "#555";
  context.font = "11px sans-serif";
  for (let p = lo; p <= hi; p++) {
    context.beginPath();
    context.moveTo(left, y(10 ** p));
    context.lineTo(width - 8, y(10 ** p));
    context.stroke();
    context.fillText(`1e${p}`, 4, y(10 ** p) + 4);
  }
  context.fillText(`iteration ${xMax}`, width - 80, height - 4);
  for (const s of series) {
    context.strokeStyle = TERM_COLOURS[s.term];
    context.beginPath();
    s.points.forEach(([i, v], n) => (n ? context.lineTo(x(i), y(v)) : context.moveTo(x(i), y(v))));
    context.stroke();
  }
  terms.forEach((term, n) => {
    context.fillStyle = TERM_COLOURS[term];
    context.fillText(term, left + 6 + n * 56, 16);
  });
}

// ------------------------------------------------------------------------------------------- the gallery

async function loadGallery() {
  const answer = await fetch("/jobs");
  if (!answer.ok) return;
  const jobs = await answer.json();
  const list = $("gallery-list");
  list.replaceChildren();
  for (const job of jobs.filter((j) => ["done", "cancelled", "failed"].includes(j.state)).slice(0, 24)) {
    const item = document.createElement("li");
    if (job.state !== "failed") {
      const image = document.createElement("img");
      image.src = `/jobs/${job.id}/image`;
      image.alt = `Result of job ${job.id}`;
      image.loading = "lazy";
      item.append(image);
    }
    const title = document.createElement("p");
    title.textContent = `${job.id}: ${job.state}${job.losses && job.losses.total != null ? `, loss ${formatNumber(job.losses.total)}` : ""}`;
    const settings = document.createElement("p");
    settings.className = "settings";
    settings.textContent = Object.entries(job.settings).map(([k, v]) => `${k}=${v}`).join(" ") || "(defaults)";
    const load = document.createElement("button");
    load.type = "button";
    load.textContent = "Load settings";
    load.setAttribute("aria-label", `Load the settings of job ${job.id}`);
    load.addEventListener("click", () => loadSettings(job));
    item.append(title, settings, load);
    if (job.state === "done") {
      const open = document.createElement("button");
      open.type = "button";
      open.textContent = "Show";
      open.setAttribute("aria-label", `Show job ${job.id}`);
      open.addEventListener("click", () => follow(job));
      item.append(" ", open);
    }
    list.append(item);
  }
}

function loadSettings(job) {
  resetSettings();
  for (const [name, value] of Object.entries(job.settings)) {
    if (name === "style_blend_weights") {
      const weights = value.split(",").map(Number);
      if (weights.length === state.styles.length) {
        const sum = weights.reduce((a, b) => a + b, 0) || 1;
        state.styles.forEach((s, i) => (s.weight = Math.round((100 * weights[i]) / sum)));
        renderStyles();
      }
    } else setSetting(name, value);
  }
  $("message").textContent = `Loaded the settings of job ${job.id}.`;
}

// ------------------------------------------------------------------------------------------- start

async function main() {
  setupPainting();
  setupPreview();
  $("content-file").addEventListener("change", (e) => e.target.files[0] && setContent(e.target.files[0]));
  $("style-files").addEventListener("change", (e) => addStyles([...e.target.files]));
  setupDrop($("content-drop"), (files) => files[0] && setContent(files[0]));
  setupDrop($("styles-drop"), addStyles);
  $("job-form").addEventListener("submit", startJob);
  $("cancel").addEventListener("click", cancelJob);
  $("preset-fastest").addEventListener("click", () => applyPreset("fastest"));
  $("reset-settings").addEventListener("click", resetSettings);
  await loadSchema();
  await loadGallery();
  document.body.dataset.ready = "true";
}

main();
