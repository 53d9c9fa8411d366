// The playground: make, watch and chain videos through the public API only (Luma's v1 dialect for
// generations and edits, /uploads for images, /models for what each model can do). No build step, no
// dependencies, nothing fetched from elsewhere. docs/playground.md describes it.
"use strict";

const LUMA = "/dream-machine/v1";
const POLL_MS = 250;
const PAGE_SIZE = 12;
const KEY_STORAGE = "dreamreel.apiKey";
const TERMINAL = new Set(["completed", "failed"]);
const FRAMES = { frame0: "Start image", frame1: "End image" };
const FIELD_CONTROLS = {
  // An error's field (as the server names it) -> the control that holds it.
  "prompt": "#prompt",
  "model": "#model",
  "aspect_ratio": "#aspect_ratio",
  "resolution": "#resolution",
  "duration": "#duration",
  "loop": "#loop",
  "concepts": "#concept",
  "keyframes.frame0": "#frame0 .drop",
  "keyframes.frame1": "#frame1 .drop",
};

const state = {
  key: localStorage.getItem(KEY_STORAGE) || "",
  catalog: null,
  current: null, // the generation on show
  watch: 0, // bumps whenever another generation is put on show, so an older poll loop stops
  offset: 0,
  frames: { frame0: null, frame1: null }, // {url: "upload:<id>", preview: object URL}
  snippet: "curl",
};

const $ = (selector, root = document) => root.querySelector(selector);

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
    this.field = fieldOf(message);
  }
}

/** The request field an error message names, if any: the server puts it first ("keyframes.frame0: ..."). */
function fieldOf(message) {
  const names = Object.keys(FIELD_CONTROLS).sort((a, b) => b.length - a.length);
  const match = names.find((name) => new RegExp(`(^|[\\s(:])${name.replace(".", "\\.")}\\b`).test(message));
  return match || null;
}

async function api(method, path, body) {
  const headers = {};
  if (state.key) headers.Authorization = `Bearer ${state.key}`;
  let payload;
  if (body instanceof Blob) {
    payload = body;
    headers["Content-Type"] = body.type || "application/octet-stream";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload });
  } catch {
    throw new ApiError(0, "The server could not be reached. Check that it is running, then try again.");
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const detail = data && data.detail !== undefined ? data.detail : null;
    const message = typeof detail === "string" ? detail : detail ? JSON.stringify(detail) : `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return data;
}

// ---------------------------------------------------------------- errors

function plainWords(error) {
  if (!(error instanceof ApiError)) return `Something went wrong in the page: ${error.message}`;
  switch (error.status) {
    case 0: return error.message;
    case 401: return `This server needs an API key: enter it at the top of the page. (${error.message})`;
    case 402: return `Not enough credits on this key: ${error.message}`;
    case 403: return `Not allowed: ${error.message}`;
    case 404: return `Not found: ${error.message}`;
    case 409: return `Not ready yet: ${error.message}`;
    case 413: return `Too large: ${error.message}`;
    case 429: return `Too many requests; wait a moment and try again. (${error.message})`;
    case 503: return `The server is busy; try again shortly. (${error.message})`;
    default: return error.status >= 500 ? `The server failed: ${error.message}` : `Please check the request: ${error.message}`;
  }
}

function showError(error) {
  clearError();
  const box = $("#error");
  box.textContent = plainWords(error);
  box.hidden = false;
  const selector = error.field && FIELD_CONTROLS[error.field];
  const control = selector && $(selector);
  if (control) {
    control.classList.add("invalid");
    control.setAttribute("aria-invalid", "true");
    box.dataset.field = error.field;
  }
  if (error.status === 401) showKeyForm();
}

function clearError() {
  const box = $("#error");
  box.hidden = true;
  box.textContent = "";
  delete box.dataset.field;
  document.querySelectorAll(".invalid").forEach((node) => {
    node.classList.remove("invalid");
    node.removeAttribute("aria-invalid");
  });
}

// ---------------------------------------------------------------- the API key

function showKeyForm() {
  const form = $("#key-form");
  form.hidden = false;
  $("#api-key").value = state.key;
}

async function saveKey(event) {
  event.preventDefault();
  state.key = $("#api-key").value.trim();
  if (state.key) localStorage.setItem(KEY_STORAGE, state.key);
  else localStorage.removeItem(KEY_STORAGE);
  clearError();
  await start();
}

// ---------------------------------------------------------------- pickers

function fillSelect(select, values, chosen, label = (value) => value) {
  select.replaceChildren(...values.map((value) => {
    const option = new Option(label(value), value);
    option.selected = value === chosen;
    return option;
  }));
}

function fillPickers() {
  const catalog = state.catalog;
  const fallback = catalog.models.find((model) => model.default) || catalog.models[0];
  fillSelect($("#model"), catalog.models.map((model) => model.name), $("#model").value || fallback.name,
    (name) => (name === fallback.name ? `${name} (default)` : name));
  fillSelect($("#aspect_ratio"), catalog.aspect_ratios, $("#aspect_ratio").value || "16:9");
  fillSelect($("#resolution"), catalog.resolutions, $("#resolution").value || "540p");
  fillSelect($("#duration"), catalog.durations, $("#duration").value || "5s");
  const concept = $("#concept");
  concept.replaceChildren(new Option("none", ""), ...catalog.concepts.map((key) => new Option(key.replaceAll("_", " "), key)));
  applyModelControls();
}

function modelInfo(name) {
  return state.catalog && state.catalog.models.find((model) => model.name === name);
}

/** Controls the chosen model lacks are disabled, so a person cannot ask for what will be refused. */
function applyModelControls() {
  const info = modelInfo($("#model").value);
  const controls = new Set(info ? info.controls : []);
  $("#loop").disabled = !controls.has("loop");
  for (const [frame, control] of [["frame0", "start_image"], ["frame1", "end_image"]]) {
    const box = $(`#${frame}`);
    const off = !controls.has(control);
    box.querySelector("input").disabled = off;
    box.querySelector(".drop").setAttribute("aria-disabled", String(off));
    box.title = off ? `${$("#model").value} cannot take this image` : "";
  }
}

// ---------------------------------------------------------------- keyframe images

async function uploadImage(frame, blob) {
  clearError();
  const hint = $(`#${frame}-hint`);
  hint.textContent = "Uploading...";
  try {
    const upload = await api("POST", "/uploads", blob);
    setFrame(frame, upload.url, URL.createObjectURL(blob));
  } catch (error) {
    hint.textContent = "Drop an image, or choose a file";
    showError(error.field ? error : Object.assign(error, { field: `keyframes.${frame}` }));
  }
}

function setFrame(frame, url, preview) {
  const box = $(`#${frame}`);
  const image = box.querySelector("img");
  if (state.frames[frame] && state.frames[frame].preview) URL.revokeObjectURL(state.frames[frame].preview);
  state.frames[frame] = url ? { url, preview } : null;
  image.hidden = !url;
  image.src = url ? preview : "";
  image.alt = url ? FRAMES[frame] : "";
  $(`#${frame}-hint`).textContent = url ? "Drop another image to replace it" : "Drop an image, or choose a file";
  box.querySelector(".clear").hidden = !url;
  box.dataset.url = url || "";
}

/** The start or end image box, from the page's template: a drop zone, a file picker and a remove button. */
function buildFrame(frame) {
  const box = $("#frame-template").content.firstElementChild.cloneNode(true);
  const title = FRAMES[frame];
  box.id = frame;
  box.dataset.frame = frame;
  box.dataset.url = "";
  box.querySelector(".frame-title").id = `${frame}-title`;
  box.querySelector(".frame-title").textContent = title;
  box.querySelector(".hint").id = `${frame}-hint`;
  box.querySelector(".drop").setAttribute("aria-labelledby", `${frame}-title ${frame}-hint`);
  box.querySelector("input").setAttribute("aria-label", `${title} file`);
  box.querySelector(".clear").textContent = `Remove ${title.toLowerCase()}`;
  $("#frames").append(box);
}

function bindFrame(frame) {
  buildFrame(frame);
  const box = $(`#${frame}`);
  const drop = box.querySelector(".drop");
  const input = box.querySelector("input");
  const disabled = () => input.disabled;
  drop.addEventListener("click", () => !disabled() && input.click());
  drop.addEventListener("keydown", (event) => {
    if ((event.key === "Enter" || event.key === " ") && !disabled()) {
      event.preventDefault();
      input.click();
    }
  });
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file && !disabled()) uploadImage(frame, file);
  });
  input.addEventListener("change", () => {
    if (input.files[0]) uploadImage(frame, input.files[0]);
    input.value = "";
  });
  box.querySelector(".clear").addEventListener("click", () => setFrame(frame, null));
}

/** A still of ``video`` (its first or last frame) as a PNG, drawn from a copy so the player is left alone. */
async function captureFrame(src, which) {
  const video = document.createElement("video");
  video.muted = true;
  video.preload = "auto";
  video.src = src;
  await once(video, "loadeddata");
  const target = which === "last" ? Math.max(0, video.duration - 0.05) : 0;
  if (Math.abs(video.currentTime - target) > 0.001) {
    video.currentTime = target;
    await once(video, "seeked");
  }
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  video.removeAttribute("src");
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

function once(target, name) {
  return new Promise((resolve, reject) => {
    target.addEventListener(name, resolve, { once: true });
    target.addEventListener("error", () => reject(new Error(`the video could not be read (${name})`)), { once: true });
  });
}

// ---------------------------------------------------------------- making and watching

function formBody() {
  const body = {
    prompt: $("#prompt").value.trim(),
    model: $("#model").value,
    aspect_ratio: $("#aspect_ratio").value,
    resolution: $("#resolution").value,
    duration: $("#duration").value,
  };
  if ($("#loop").checked && !$("#loop").disabled) body.loop = true;
  const concept = $("#concept").value;
  if (concept) body.concepts = [{ key: concept }];
  const keyframes = {};
  for (const frame of ["frame0", "frame1"]) {
    if (state.frames[frame]) keyframes[frame] = { type: "image", url: state.frames[frame].url };
  }
  if (Object.keys(keyframes).length) body.keyframes = keyframes;
  return body;
}

async function submit(path, body) {
  clearError();
  const button = $("#submit");
  button.disabled = true;
  try {
    const generation = await api("POST", path, body);
    show(generation);
    loadGallery();
    return generation;
  } catch (error) {
    showError(error);
    return null;
  } finally {
    button.disabled = false;
  }
}

function show(generation) {
  state.current = generation;
  const watch = ++state.watch;
  $("#current").hidden = false;
  for (const video of [$("#player"), $("#preview")]) {
    video.removeAttribute("src");
    delete video.dataset.src;
    video.hidden = true;
  }
  render(generation);
  if (!TERMINAL.has(generation.state)) poll(generation.id, watch);
}

async function poll(id, watch) {
  while (watch === state.watch) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    if (watch !== state.watch) return;
    let generation;
    try {
      generation = await api("GET", `${LUMA}/generations/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error.status === 404) return; // deleted meanwhile
      $("#status").textContent = `Waiting for the server: ${plainWords(error)}`;
      continue; // a poll that failed is retried; the job goes on regardless
    }
    if (watch !== state.watch) return;
    render(generation);
    if (TERMINAL.has(generation.state)) {
      loadGallery();
      return;
    }
  }
}

function statusText(generation) {
  switch (generation.state) {
    case "queued": {
      const ahead = generation.queue_position;
      if (ahead === null || ahead === undefined) return "Queued";
      return ahead === 0 ? "Queued: next in line" : `Queued: ${ahead} ahead in the queue`;
    }
    case "dreaming": return `Dreaming: ${Math.round(generation.progress * 100)} %`;
    case "completed": return "Completed";
    default: return `Failed: ${generation.failure_reason || "no reason given"}`;
  }
}

function render(generation) {
  state.current = generation;
  const progress = $("#progress");
  progress.value = generation.progress;
  progress.dataset.state = generation.state;
  $("#status").textContent = statusText(generation);
  $("#current").dataset.id = generation.id;
  $("#current").dataset.state = generation.state;
  const assets = generation.assets || {};
  const preview = $("#preview");
  if (generation.state === "dreaming" && assets.progress_video) {
    if (preview.dataset.src !== assets.progress_video) {
      preview.dataset.src = assets.progress_video;
      preview.src = assets.progress_video;
    }
    preview.hidden = false;
  } else {
    preview.hidden = true;
  }
  const player = $("#player");
  if (generation.state === "completed" && assets.video) {
    if (player.dataset.src !== assets.video) {
      player.dataset.src = assets.video;
      player.poster = assets.image || "";
      player.loop = Boolean(generation.request && generation.request.loop);
      player.muted = true;
      player.autoplay = true;
      player.src = assets.video;
    }
    player.hidden = false;
    $("#download").href = assets.video;
  } else {
    player.hidden = true;
    delete player.dataset.src;
  }
  $("#actions").hidden = generation.state !== "completed";
  updateActions();
  const request = generation.request || {};
  $("#prompt-echo").textContent = request.prompt ? `"${request.prompt}"` : "";
  renderSnippet();
}

function updateActions() {
  const info = modelInfo($("#model").value);
  const controls = new Set(info ? info.controls : []);
  const needs = {
    "extend": ["extend"], "reverse-extend": ["reverse_extend"], "loop": ["loop", "start_image"],
    "start-frame": ["start_image"], "end-frame": ["end_image"], "modify": ["modify"], "reframe": ["reframe"],
  };
  document.querySelectorAll("#actions [data-action]").forEach((button) => {
    const need = needs[button.dataset.action] || [];
    button.disabled = Boolean(info && !need.every((control) => controls.has(control)));
  });
}

// ---------------------------------------------------------------- chaining

const RESOLUTIONS = ["540p", "720p", "1080p", "4k"];

function chainPrompt(generation) {
  return $("#prompt").value.trim() || (generation.request && generation.request.prompt) || "";
}

// A chained clip is made by the model picked in the form (a person may pick a faster one to try things out),
// at the source's aspect ratio and resolution.
function videoRequest(generation, extra) {
  const request = generation.request || {};
  return {
    prompt: chainPrompt(generation),
    model: $("#model").value,
    aspect_ratio: request.aspect_ratio || $("#aspect_ratio").value,
    resolution: request.resolution || $("#resolution").value,
    duration: $("#duration").value,
    ...extra,
  };
}

const ACTIONS = {
  "extend": (g) => submit(`${LUMA}/generations`, videoRequest(g, { keyframes: { frame0: { type: "generation", id: g.id } } })),
  "reverse-extend": (g) => submit(`${LUMA}/generations`, videoRequest(g, { keyframes: { frame1: { type: "generation", id: g.id } } })),
  "loop": (g) => loopOn(g),
  "start-frame": (g) => useFrame(g, "frame0", "last"),
  "end-frame": (g) => useFrame(g, "frame1", "first"),
  "modify": (g) => submit(`${LUMA}/generations/video/modify`, {
    generation_type: "modify_video", model: $("#model").value, prompt: chainPrompt(g), mode: $("#modify-mode").value,
    media: { url: g.assets.video },
  }),
  "reframe": (g) => submit(`${LUMA}/generations/video/reframe`, {
    generation_type: "reframe_video", model: $("#model").value, prompt: chainPrompt(g), aspect_ratio: $("#aspect_ratio").value,
    media: { url: g.assets.video },
  }),
  "upscale": (g) => {
    const from = RESOLUTIONS.indexOf((g.request && g.request.resolution) || "540p");
    const resolution = RESOLUTIONS[Math.min(RESOLUTIONS.length - 1, from + 1)];
    return submit(`${LUMA}/generations/${encodeURIComponent(g.id)}/upscale`, { generation_type: "upscale_video", resolution });
  },
  "delete": async (g) => {
    clearError();
    try {
      await api("DELETE", `${LUMA}/generations/${encodeURIComponent(g.id)}`);
    } catch (error) {
      showError(error);
      return;
    }
    state.watch++;
    state.current = null;
    $("#current").hidden = true;
    loadGallery();
  },
};

/** "Loop it": a looping clip that starts, and closes, on this clip's first frame (a loop cannot extend a clip). */
async function loopOn(generation) {
  clearError();
  try {
    const upload = await api("POST", "/uploads", await captureFrame(generation.assets.video, "first"));
    await submit(`${LUMA}/generations`,
      videoRequest(generation, { loop: true, keyframes: { frame0: { type: "image", url: upload.url } } }));
  } catch (error) {
    showError(error);
  }
}

/** "Use as start frame": the clip's last frame becomes the next clip's first; "end frame": its first its last. */
async function useFrame(generation, frame, which) {
  clearError();
  try {
    const blob = await captureFrame(generation.assets.video, which);
    await uploadImage(frame, blob);
    $("#prompt").focus();
  } catch (error) {
    showError(error);
  }
}

// ---------------------------------------------------------------- the gallery

async function loadGallery() {
  let page;
  try {
    page = await api("GET", `${LUMA}/generations?limit=${PAGE_SIZE}&offset=${state.offset}`);
  } catch (error) {
    if (error.status === 401) showError(error);
    return;
  }
  const list = $("#gallery");
  list.replaceChildren(...page.generations.map(galleryItem));
  $("#newer").disabled = state.offset === 0;
  $("#older").disabled = !page.has_more;
  $("#page").textContent = page.count ? `${state.offset + 1}-${state.offset + page.count}` : "nothing yet";
}

function galleryItem(generation) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.id = generation.id;
  button.dataset.state = generation.state;
  const assets = generation.assets || {};
  let poster;
  if (assets.image) {
    poster = document.createElement("img");
    poster.src = assets.image;
    poster.alt = "";
    poster.loading = "lazy";
  } else {
    poster = document.createElement("span");
    poster.className = "no-poster";
  }
  const words = document.createElement("span");
  words.className = "text";
  const request = generation.request || {};
  words.textContent = request.prompt || request.generation_type || generation.id;
  const stateLine = document.createElement("span");
  stateLine.className = "state";
  stateLine.textContent = `${generation.state} · ${request.generation_type || "video"}`;
  button.append(poster, words, stateLine);
  button.setAttribute("aria-label", `Open ${words.textContent} (${generation.state})`);
  button.addEventListener("click", () => {
    show(generation);
    $("#current").scrollIntoView({ behavior: "smooth" });
  });
  item.append(button);
  return item;
}

// ---------------------------------------------------------------- the request as code

/** The call that would make the generation on show again, for each client the server speaks to. */
function requestCall(generation) {
  const request = { ...(generation.request || {}) };
  for (const key of Object.keys(request)) {
    if (request[key] === null || key === "callback_url") delete request[key];
  }
  const type = request.generation_type;
  if (type === "upscale_video") {
    return { path: `${LUMA}/generations/${generation.id}/upscale`, body: request, sdk: `generations.upscale("${generation.id}", ` };
  }
  if (type === "modify_video") return { path: `${LUMA}/generations/video/modify`, body: request, sdk: "generations.video.modify(" };
  if (type === "reframe_video") return { path: `${LUMA}/generations/video/reframe`, body: request, sdk: "generations.video.reframe(" };
  delete request.generation_type;
  return { path: `${LUMA}/generations`, body: request, sdk: "generations.create(" };
}

function python(value) {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "string" || typeof value === "number") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(python).join(", ")}]`;
  return `{${Object.entries(value).map(([key, item]) => `${JSON.stringify(key)}: ${python(item)}`).join(", ")}}`;
}

function kwargs(body) {
  return Object.entries(body).map(([key, value]) => `    ${key}=${python(value)},`).join("\n");
}

function deliveredSize(aspect, resolution) {
  const short = { "540p": 540, "720p": 720, "1080p": 1080, "4k": 2160 }[resolution] || 540;
  const [a, b] = aspect.split(":").map(Number);
  const long = Math.max(2, Math.round((short * Math.max(a, b)) / Math.min(a, b) / 2) * 2);
  return a >= b ? `${long}x${short}` : `${short}x${long}`;
}

function snippetText(kind, generation) {
  const origin = window.location.origin;
  const call = requestCall(generation);
  const body = call.body;
  if (kind === "curl") {
    return [
      `curl -X POST "${origin}${call.path}" \\`,
      `  -H "Authorization: Bearer $DREAMREEL_API_KEY" -H "Content-Type: application/json" \\`,
      `  -d '${JSON.stringify(body).replaceAll("'", "'\\''")}'`,
    ].join("\n");
  }
  if (kind === "lumaai") {
    return [
      "import os",
      "from lumaai import LumaAI",
      "",
      `client = LumaAI(auth_token=os.environ["DREAMREEL_API_KEY"], base_url="${origin}${LUMA}")`,
      `generation = client.${call.sdk}`,
      kwargs(body),
      ")",
    ].join("\n");
  }
  const plain = body.prompt !== undefined && !body.keyframes && !body.loop && !body.media && !body.concepts;
  if (kind === "openai") {
    if (!plain) return "# Keyframes, loops, concepts and edits go through the Luma dialect (lumaai tab);\n# OpenAI's /v1/videos takes a prompt, a size and a length.";
    return [
      "import os",
      "from openai import OpenAI",
      "",
      `client = OpenAI(api_key=os.environ["DREAMREEL_API_KEY"], base_url="${origin}/v1")`,
      "video = client.videos.create_and_poll(",
      `    model=${python(body.model)},`,
      `    prompt=${python(body.prompt)},`,
      `    size=${python(deliveredSize(body.aspect_ratio || "16:9", body.resolution || "540p"))},`,
      `    seconds=${python(String(parseInt(body.duration || "5s", 10)))},`,
      ")",
    ].join("\n");
  }
  if (!plain) return "# Keyframes, loops, concepts and edits go through the Luma dialect (lumaai tab) here.";
  const endpoint = body.model === "ray-flash-2" ? "ray-2-flash" : body.model;
  const args = { prompt: body.prompt, aspect_ratio: body.aspect_ratio, resolution: body.resolution, duration: body.duration };
  return [
    "import fal_client  # with FAL_KEY, FAL_QUEUE_RUN_HOST and FAL_RUN_HOST pointing at this server (README)",
    "",
    `result = fal_client.subscribe("fal-ai/luma-dream-machine/${endpoint}", arguments=${python(args)})`,
  ].join("\n");
}

function renderSnippet() {
  if (!state.current) return;
  $("#snippet").textContent = snippetText(state.snippet, state.current);
  document.querySelectorAll("[data-snippet]").forEach((tab) => {
    tab.setAttribute("aria-selected", String(tab.dataset.snippet === state.snippet));
  });
}

// ---------------------------------------------------------------- start

function bind() {
  $("#key-form").addEventListener("submit", saveKey);
  $("#create-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submit(`${LUMA}/generations`, formBody());
  });
  $("#model").addEventListener("change", () => {
    applyModelControls();
    updateActions();
  });
  bindFrame("frame0");
  bindFrame("frame1");
  document.querySelectorAll("#actions [data-action]").forEach((button) => {
    button.addEventListener("click", () => state.current && ACTIONS[button.dataset.action](state.current));
  });
  document.querySelectorAll("[data-snippet]").forEach((tab) => {
    tab.addEventListener("click", () => {
      state.snippet = tab.dataset.snippet;
      renderSnippet();
    });
  });
  $("#copy").addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText($("#snippet").textContent));
  $("#newer").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE_SIZE);
    loadGallery();
  });
  $("#older").addEventListener("click", () => {
    state.offset += PAGE_SIZE;
    loadGallery();
  });
}

async function start() {
  try {
    state.catalog = await api("GET", "/models");
  } catch (error) {
    showError(error);
    return;
  }
  if (state.key) showKeyForm(); // a stored key can be changed
  fillPickers();
  document.body.dataset.ready = "true";
  await loadGallery();
}

bind();
start();
