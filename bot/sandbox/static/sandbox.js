// Hearback sandbox page: plays a customer, the staff and the admin through the emulator's control
// API on this same origin. Every chat is rebuilt from the emulator's event stream (one event per
// message sent, edited or deleted, and per answered tap), so what shows is what the bot did.
"use strict";

const state = {
  world: null,
  chats: new Map(), // "p<user id>" (private chat with the bot) or "g<chat id>" -> Map(id -> message)
  customer: null, // the customer on screen
  staffActor: null, // who writes in the staff group
  topic: null, // the forum topic on screen (null: General)
  replyTo: null, // a staff message being replied to
  unread: new Set(), // topics with messages not yet seen
  dirty: new Set(),
};

const $ = (selector, root = document) => root.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function call(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    return { ok: false, error: "the sandbox does not answer (stopped?)" };
  }
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = null;
  }
  if (!response.ok) return { ok: false, error: (data && data.error) || response.statusText };
  return { ok: true, data };
}

// -- the chats, from events ---------------------------------------------------------------------

const groupKey = () => "g" + state.world.group.id;
const paneKey = {
  customer: () => "p" + state.customer,
  staff: groupKey,
  admin: () => "p" + state.world.admin.id,
};

function chat(key) {
  let found = state.chats.get(key);
  if (!found) {
    found = new Map();
    state.chats.set(key, found);
  }
  return found;
}

function apply(event) {
  if (event.bot_id && event.bot_id !== state.world.bot.id) return;
  const key = (event.bot_id ? "p" : "g") + event.chat_id;
  if (event.type === "answer") {
    if (event.text) toast(paneOf(key, event.user_id), event.text);
    return;
  }
  if (event.type === "tap") return; // what the tap changes arrives as edits and messages
  const message = event.message;
  const messages = chat(key);
  if (event.type === "delete") messages.delete(message.message_id);
  else messages.set(message.message_id, message);
  if (key === groupKey() && event.type === "message") {
    const thread = message.message_thread_id ?? null;
    // A new case is what staff want to see, unless they are half-way through writing elsewhere.
    if (message.forum_topic_created && !$('[data-composer="staff"] input').value) {
      state.topic = thread;
      state.replyTo = null;
    } else if (thread !== state.topic) {
      state.unread.add(thread);
    }
  }
  markDirty(key);
  if (event.type === "message" && event.seq > state.world.last_event) flagTab(key);
}

// On a phone one chat shows at a time: a dot on the others' tabs says something came.
function flagTab(key) {
  for (const [pane, keyOf] of Object.entries(paneKey)) {
    const tab = $(`.tabs button[data-show="${pane}"]`);
    if (keyOf() === key && !tab.classList.contains("active")) tab.classList.add("unread");
  }
}

function paneOf(key, userId) {
  if (key === groupKey()) return "staff";
  if (state.world.admin.id === userId && key === paneKey.admin()) return "admin";
  return key === paneKey.customer() ? "customer" : null;
}

function markDirty(key) {
  for (const [pane, keyOf] of Object.entries(paneKey)) {
    if (keyOf() === key) state.dirty.add(pane);
  }
  requestAnimationFrame(renderDirty);
}

function renderDirty() {
  for (const pane of state.dirty) render(pane);
  state.dirty.clear();
}

// -- forum topics -------------------------------------------------------------------------------

function topics() {
  const found = new Map();
  for (const message of chat(groupKey()).values()) {
    const thread = message.message_thread_id;
    if (message.forum_topic_created) found.set(thread, { name: message.forum_topic_created.name, closed: false });
    const topic = found.get(thread);
    if (!topic) continue;
    if (message.forum_topic_edited && message.forum_topic_edited.name) topic.name = message.forum_topic_edited.name;
    if (message.forum_topic_closed) topic.closed = true;
    if (message.forum_topic_reopened) topic.closed = false;
  }
  return found;
}

function renderTopics() {
  const bar = $("#topics");
  const entries = [[null, { name: "General" }], ...topics()];
  bar.replaceChildren(
    ...entries.map(([thread, topic]) =>
      el(
        "button",
        {
          type: "button",
          role: "tab",
          "data-thread": thread ?? "",
          class: [
            thread === state.topic ? "active" : "",
            state.unread.has(thread) ? "unread" : "",
            topic.closed ? "closed" : "",
          ].join(" "),
          onclick: () => {
            state.topic = thread;
            state.replyTo = null;
            render("staff");
          },
        },
        (topic.closed ? "🔒 " : "") + topic.name,
      ),
    ),
  );
}

// -- rendering ----------------------------------------------------------------------------------

function actorOf(pane) {
  if (pane === "customer") return state.customer;
  if (pane === "staff") return state.staffActor;
  return state.world.admin.id;
}

function render(pane) {
  if (!state.world) return;
  const box = $(`#${pane}-messages`);
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  let messages = [...chat(paneKey[pane]()).values()];
  if (pane === "staff") {
    state.unread.delete(state.topic);
    renderTopics();
    messages = messages.filter((m) => (m.message_thread_id ?? null) === state.topic);
    renderReplying();
  }
  messages.sort((a, b) => a.message_id - b.message_id);
  const nodes = messages.map((message) => renderMessage(pane, message));
  if (!nodes.length) nodes.push(el("div", { class: "empty" }, emptyHint(pane)));
  box.replaceChildren(...nodes);
  if (nearBottom) box.scrollTop = box.scrollHeight;
}

function emptyHint(pane) {
  if (pane === "customer") return "Press “Record a visit” (with “now”): the survey arrives here.";
  if (pane === "staff") return "Nothing here yet. Each case opens its own topic.";
  return "Try /stats, /settings or /help.";
}

function renderMessage(pane, message) {
  const service = serviceText(message);
  if (service) return el("div", { class: "service", "data-message-id": message.message_id }, service);
  const from = message.from || {};
  const mine = from.id === actorOf(pane);
  const node = el("div", {
    class: ["msg", mine ? "out" : "in", state.replyTo === message.message_id && pane === "staff" ? "selected" : ""].join(" "),
    "data-message-id": message.message_id,
    "data-from": from.is_bot ? "bot" : "person",
  });
  if (message.chat.type !== "private" && !mine) node.append(el("div", { class: "who" }, from.first_name || "?"));
  const replied = message.reply_to_message;
  if (replied && !replied.forum_topic_created) {
    node.append(el("div", { class: "quote" }, (replied.from || {}).first_name + ": " + (replied.text || replied.caption || "…")));
  }
  if (message.photo) {
    const biggest = message.photo[message.photo.length - 1];
    node.append(el("img", { src: "/_emulator/files/" + encodeURIComponent(biggest.file_id), alt: message.caption || "photo", loading: "lazy" }));
  }
  if (message.document) {
    const doc = message.document;
    node.append(
      el(
        "a",
        { class: "doc", href: "/_emulator/files/" + encodeURIComponent(doc.file_id), download: doc.file_name || "file" },
        el("span", { class: "icon" }, "⬇"),
        el("span", {}, doc.file_name || "document", el("small", {}, size(doc.file_size))),
      ),
    );
  }
  if (message.voice) node.append(el("div", { class: "text" }, `🎤 voice note, ${message.voice.duration}s`));
  if (message.sticker) node.append(el("div", { class: "text" }, message.sticker.emoji || "sticker"));
  const text = message.text ?? message.caption;
  if (text) node.append(el("div", { class: "text" }, text));
  const keyboard = (message.reply_markup || {}).inline_keyboard;
  if (keyboard && keyboard.length) node.append(renderKeyboard(pane, message, keyboard));
  node.append(el("div", { class: "meta" }, (message.edit_date ? "edited · " : "") + clock(message.date)));
  if (pane === "staff") {
    node.addEventListener("click", (event) => {
      if (event.target.closest("button, a")) return;
      state.replyTo = state.replyTo === message.message_id ? null : message.message_id;
      render("staff");
      $('[data-composer="staff"] input').focus();
    });
  }
  return node;
}

function serviceText(message) {
  if (message.forum_topic_created) return `Topic “${message.forum_topic_created.name}” created`;
  if (message.forum_topic_edited) return `Topic renamed “${message.forum_topic_edited.name || ""}”`;
  if (message.forum_topic_closed) return "Topic closed";
  if (message.forum_topic_reopened) return "Topic reopened";
  return null;
}

function renderKeyboard(pane, message, keyboard) {
  return el(
    "div",
    { class: "keyboard" },
    keyboard.map((row) =>
      el(
        "div",
        { class: "row" },
        row.map((button) =>
          button.url
            ? el("a", { href: button.url, target: "_blank", rel: "noopener" }, button.text + " ↗")
            : el("button", { type: "button", onclick: (event) => tap(pane, message, button, event.target) }, button.text),
        ),
      ),
    ),
  );
}

function renderReplying() {
  const bar = $("#replying");
  const message = state.replyTo && chat(groupKey()).get(state.replyTo);
  bar.hidden = !message;
  if (message) $("span", bar).textContent = (message.text || message.caption || "…").split("\n")[0];
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function size(bytes) {
  if (!bytes && bytes !== 0) return "";
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KB`;
}

function toast(pane, text) {
  if (!pane) return;
  const box = document.getElementById(pane);
  const note = el("div", { class: "toast", role: "status" }, text);
  box.append(note);
  setTimeout(() => note.remove(), 3500);
}

function status(text, error = false) {
  const line = $("#visit-status");
  line.textContent = text;
  line.classList.toggle("error", error);
}

// -- acting -------------------------------------------------------------------------------------

async function tap(pane, message, button, node) {
  node.disabled = true;
  const body = { bot: state.world.bot.id, message_id: message.message_id, data: button.callback_data };
  if (message.chat.type !== "private") body.chat_id = message.chat.id;
  const result = await call("POST", `/_emulator/users/${actorOf(pane)}/tap`, body);
  node.disabled = false;
  if (!result.ok) toast(pane, result.error);
}

async function send(pane, text) {
  let result;
  if (pane === "staff") {
    const body = { user: state.staffActor, bot: state.world.bot.id, text };
    if (state.topic !== null) body.thread_id = state.topic;
    if (state.replyTo) body.reply_to = state.replyTo;
    result = await call("POST", `/_emulator/chats/${state.world.group.id}/send`, body);
    if (result.ok) {
      state.replyTo = null;
      renderReplying();
    }
  } else {
    result = await call("POST", `/_emulator/users/${actorOf(pane)}/send`, { bot: state.world.bot.id, text });
  }
  if (!result.ok) toast(pane, result.error);
  return result.ok;
}

async function recordVisit(event) {
  event.preventDefault();
  const now = $("#visit-now").checked;
  const button = $("#record-visit");
  button.disabled = true;
  status("Recording…");
  const result = await call("POST", "/sandbox/visits", {
    customer_id: state.customer,
    now,
    location: $("#visit-location").value,
  });
  button.disabled = false;
  if (!result.ok) return status(result.error, true);
  const { status: code, answer } = result.data;
  if (code >= 300) return status(`The API answered ${code}: ${answer.error || ""}`, true);
  const survey = answer.survey || {};
  if (survey.state === "skipped") return status(`Visit ${answer.visit_id} recorded; survey skipped (${survey.reason}).`);
  const due = survey.due_at ? new Date(survey.due_at) : null;
  status(
    now || !due || due <= new Date()
      ? `Visit recorded at ${answer.location || "—"}: the survey is on its way.`
      : `Visit recorded: survey due at ${due.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })} (SURVEY_DELAY ${state.world.survey_delay}).`,
  );
}

// -- start --------------------------------------------------------------------------------------

function fillSelect(select, people, selected) {
  select.replaceChildren(
    ...people.map((person) =>
      el("option", { value: person.id, selected: person.id === selected }, person.first_name + (person.language_code && !person.language_code.startsWith("en") ? ` (${person.language_code})` : "")),
    ),
  );
}

function connect() {
  const stream = new EventSource("/_emulator/events/stream?since=0");
  stream.onopen = () => ($("#connection").hidden = true);
  stream.onerror = () => ($("#connection").hidden = false);
  stream.onmessage = (message) => apply(JSON.parse(message.data));
}

async function start() {
  const result = await call("GET", "/sandbox/world");
  if (!result.ok) {
    document.body.prepend(el("p", { class: "status error" }, "The sandbox did not answer: " + result.error));
    return;
  }
  const world = (state.world = result.data);
  state.customer = world.customers[0].id;
  state.staffActor = world.staff[0].id;
  $("#business").textContent = "· " + world.business;
  $("#group-title").textContent = world.group.title;
  $("#admin-name").textContent = `${world.admin.first_name} (admin)`;
  document.querySelectorAll(".bot-name").forEach((node) => (node.textContent = "@" + world.bot.username));
  fillSelect($("#customer-select"), world.customers, state.customer);
  fillSelect($("#staff-select"), [...world.staff, world.admin], state.staffActor);
  $("#customer-select").addEventListener("change", (event) => {
    state.customer = Number(event.target.value);
    status("");
    render("customer");
  });
  $("#staff-select").addEventListener("change", (event) => {
    state.staffActor = Number(event.target.value);
    render("staff");
  });
  $("#visit-form").addEventListener("submit", recordVisit);
  $("#cancel-reply").addEventListener("click", () => {
    state.replyTo = null;
    render("staff");
  });
  document.querySelectorAll("form.composer").forEach((form) =>
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = form.elements.text;
      const text = input.value.trim();
      if (!text) return;
      input.value = "";
      if (!(await send(form.dataset.composer, text))) input.value = text;
    }),
  );
  // A sample photo or voice note, as a customer attaches one to a comment.
  document.querySelectorAll("button.attach").forEach((button) =>
    button.addEventListener("click", async () => {
      const result = await call("POST", `/_emulator/users/${state.customer}/send`, { bot: state.world.bot.id, kind: button.dataset.kind });
      if (!result.ok) toast("customer", result.error);
    }),
  );
  document.querySelectorAll("#admin-quick button").forEach((button) =>
    button.addEventListener("click", () => send("admin", button.dataset.command)),
  );
  document.querySelectorAll(".tabs button").forEach((tab) =>
    tab.addEventListener("click", () => {
      document.querySelectorAll(".tabs button").forEach((other) => other.classList.toggle("active", other === tab));
      tab.classList.remove("unread");
      document.querySelectorAll(".pane").forEach((pane) => pane.classList.toggle("active", pane.id === tab.dataset.show));
    }),
  );
  for (const pane of Object.keys(paneKey)) render(pane);
  connect();
}

start();
