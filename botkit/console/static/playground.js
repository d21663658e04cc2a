// The playground page: draws GET /api/state, and turns clicks into POSTs the server makes deliveries of.
// Every text is put in with textContent: nothing the bot or the contact wrote is parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let state = null;
let drawn = "";  // the state last drawn: an unchanged poll redraws nothing (typing in a form survives)
let busy = 0;
const openLists = new Set();  // WhatsApp lists the contact opened, by message id

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

async function post(path, body) {
  busy += 1;
  draw();
  try {
    const response = await fetch(path, {
      method: "POST", headers: {"Content-Type": "application/json", "X-Playground": "1"}, body: JSON.stringify(body),
    });
    if (!response.ok) {
      const answer = await response.json();
      alert(answer.error || "the playground refused that");
    } else {
      take(await response.text());
    }
  } finally {
    busy -= 1;
    draw();
  }
}

async function refresh() {
  try {
    const response = await fetch("/api/state");
    if (response.ok) take(await response.text());
  } catch (err) { /* the server stopped: keep the last picture */ }
}

function take(text) {
  if (text === drawn) return;
  drawn = text;
  state = JSON.parse(text);
  draw();
}

function draw() {
  if (!state) return;
  const look = state.channel.look;
  $("bot-name").textContent = "bot: " + state.bot;
  const select = $("channel");
  if (!select.options.length) {
    for (const channel of state.channels) select.append(new Option(channel.label, channel.type));
  }
  select.value = state.channel.type;
  $("phone").className = "phone look-" + look;
  $("phone-title").textContent = {widget: "Support", whatsapp: "Support (WhatsApp)", telegram: "Support bot",
    email: "support@example.com", sms: "+1 555 0100"}[look] || "Support";
  $("phone-sub").textContent = state.channel.label;
  drawChat(look);
  $("typing").hidden = !(busy > 0 || state.working || state.conversation.typing);
  drawAgent();
  drawTimeline();
}

function drawChat(look) {
  const chat = $("chat");
  chat.replaceChildren();
  for (const message of state.messages) {
    if (message.private) continue;  // the contact never sees private notes
    if (message.side === "activity") {
      chat.append(el("div", "activity", message.content));
      continue;
    }
    const row = el("div", "row " + (message.side === "contact" ? "mine" : "theirs"));
    const bubble = el("div", "bubble " + message.side);
    bubble.dataset.messageId = message.id;
    const view = message.view || {as: "text", text: message.content};
    if (view.text) bubble.append(el("div", "text", view.text));
    if (message.side === "agent") bubble.prepend(el("div", "sender", "Alex Agent"));
    drawRich(bubble, message, view, look);
    row.append(bubble);
    chat.append(row);
  }
  chat.scrollTop = chat.scrollHeight;
}

function drawRich(bubble, message, view, look) {
  if (view.as === "buttons") {
    const box = el("div", "options");
    for (const item of view.items) {
      const button = el("button", "option", item.title);
      if ((view.picked || []).includes(item.value)) button.classList.add("picked");
      button.disabled = look === "widget" && (view.picked || []).length > 0;
      button.addEventListener("click", () => post("/api/contact", {pick: {message_id: message.id, value: item.value}}));
      box.append(button);
    }
    bubble.append(box);
  } else if (view.as === "list") {
    const opener = el("button", "option list-button", "\u2630 " + view.button);
    const list = el("div", "list-rows");
    list.hidden = !openLists.has(message.id);
    opener.addEventListener("click", () => {
      list.hidden = !list.hidden;
      if (list.hidden) openLists.delete(message.id); else openLists.add(message.id);
    });
    for (const item of view.items) {
      const row = el("button", "list-row", item.title);
      row.addEventListener("click", () => post("/api/contact", {pick: {message_id: message.id, value: item.value}}));
      list.append(row);
    }
    bubble.append(opener, list);
  } else if (view.as === "cards") {
    for (const card of view.items) {
      const box = el("div", "card");
      if (card.media_url) {
        const image = el("img");
        image.src = card.media_url;
        image.alt = card.title;
        box.append(image);
      }
      box.append(el("div", "card-title", card.title));
      if (card.description) box.append(el("div", "card-description", card.description));
      for (const action of card.actions || []) {
        if (action.type === "link") {
          const link = el("a", "card-action", action.text);
          link.href = action.uri;
          link.target = "_blank";
          link.rel = "noopener noreferrer";
          box.append(link);
        } else {
          const button = el("button", "card-action", action.text);
          button.title = "In the widget a postback goes to the host page only; Chatwoot delivers nothing";
          box.append(button);
        }
      }
      bubble.append(box);
    }
  } else if (view.as === "article") {
    for (const article of view.items) {
      const link = el("a", "article");
      link.href = article.link || "#";
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.append(el("div", "card-title", article.title));
      if (article.description) link.append(el("div", "card-description", article.description));
      bubble.append(link);
    }
  } else if (view.as === "form") {
    const form = el("form", "rich-form");
    const done = (view.submitted || []).length > 0;
    for (const field of view.items) {
      const label = el("label", null, field.label || field.name);
      const input = field.type === "text_area" ? el("textarea") : el("input");
      if (field.type === "select") {
        const select = el("select");
        for (const option of field.options || []) select.append(new Option(option.label, option.value));
        label.append(select);
        select.name = field.name;
      } else {
        input.name = field.name;
        input.type = {email: "email", text: "text", text_area: undefined}[field.type] || "text";
        input.placeholder = field.placeholder || "";
        input.required = !!field.required;
        label.append(input);
      }
      const previous = (view.submitted || []).find((v) => v.name === field.name);
      if (previous) label.querySelector("input,textarea,select").value = previous.value;
      form.append(label);
    }
    const submit = el("button", "option", done ? "Submitted" : "Submit");
    submit.disabled = done;
    form.append(submit);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const values = {};
      for (const [name, value] of new FormData(form).entries()) values[name] = value;
      post("/api/contact", {form: {message_id: message.id, values}});
    });
    bubble.append(form);
  } else if (view.as === "email_input") {
    const form = el("form", "rich-form email-input");
    const input = el("input");
    input.type = "email";
    input.placeholder = "Please enter your email";
    input.value = view.submitted || "";
    input.disabled = !!view.submitted;
    const submit = el("button", "option", "\u2192");
    submit.disabled = !!view.submitted;
    form.append(input, submit);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      post("/api/contact", {email: {message_id: message.id, email: input.value}});
    });
    bubble.append(form);
  }
}

function drawAgent() {
  const c = state.conversation;
  $("conversation-id").textContent = "#" + c.id;
  $("status").replaceChildren(el("span", "pill status-" + c.status, c.status));
  $("team").textContent = c.team ? c.team.name : "none";
  $("assignee").textContent = c.assignee ? c.assignee.name : "none";
  $("labels").replaceChildren(...(c.labels.length ? c.labels.map((l) => el("span", "pill", l)) : [el("span", "muted", "none")]));
  $("priority").textContent = c.priority || "none";
  const handoffs = $("handoffs");
  handoffs.replaceChildren();
  for (const handoff of state.handoffs) {
    const box = el("div", "handoff");
    box.append(el("div", null, "Handed to humans (" + handoff.reason + ") by " + (handoff.handler || "the bot")));
    if (handoff.summary) box.append(el("div", "summary", handoff.summary));
    handoffs.append(box);
  }
  if (!state.handoffs.length) handoffs.append(el("div", "muted", "none yet"));
  const notes = $("notes");
  notes.replaceChildren();
  for (const message of state.messages.filter((m) => m.private)) {
    const box = el("div", "note " + message.side);
    box.append(el("div", "sender", message.side === "bot" ? "the bot" : "Alex Agent"), el("div", null, message.content));
    notes.append(box);
  }
  if (!notes.children.length) notes.append(el("div", "muted", "none yet"));
}

function drawTimeline() {
  const box = $("timeline");
  box.replaceChildren();
  for (const delivery of [...state.timeline].reverse()) {
    const item = el("details", "delivery" + (delivery.error ? " failed" : ""));
    item.open = delivery === state.timeline[state.timeline.length - 1];
    const summary = el("summary");
    summary.append(el("strong", null, delivery.event), " ",
      el("span", "muted", (delivery.handler ? "\u2192 " + delivery.handler : "") + " \u00b7 " + delivery.ms + " ms"));
    item.append(summary);
    if (delivery.text) item.append(el("div", "said", "\u201c" + delivery.text + "\u201d"));
    const list = el("ol", "steps");
    list.append(el("li", "step wait", "waited in the queue " + delivery.waited_ms + " ms"));
    for (const step of delivery.steps) {
      list.append(el("li", "step " + step.kind, step.text));
    }
    if (delivery.error) list.append(el("li", "step error", "failed: " + delivery.error));
    item.append(list);
    box.append(item);
  }
  if (!state.timeline.length) box.append(el("div", "muted", "Say something to the bot."));
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("message").value.trim();
  if (!text) return;
  $("message").value = "";
  post("/api/contact", {text});
});
$("agent-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("agent-text").value.trim();
  if (!text) return;
  $("agent-text").value = "";
  post("/api/agent", {do: "note", text});
});
$("agent-reply").addEventListener("click", () => {
  const text = $("agent-text").value.trim();
  if (!text) return;
  $("agent-text").value = "";
  post("/api/agent", {do: "reply", text});
});
for (const button of document.querySelectorAll("[data-agent]")) {
  button.addEventListener("click", () => post("/api/agent", {do: button.dataset.agent}));
}
$("channel").addEventListener("change", (event) => post("/api/channel", {channel: event.target.value}));

refresh();
setInterval(refresh, 1000);
