// Peer (c): the Agent Bots guide's Express bot on Node: the keyword logic and the Chatwoot calls inside the
// request (Node's own fetch); no signature check, no dedupe, no queue.
//   PORT=8000 CHATWOOT_BASE_URL=... CHATWOOT_BOT_TOKEN=... node express_app.js
// MODEL_SECONDS > 0: ask the bench's model first (it takes that long).
const express = require("express");

const BASE = process.env.CHATWOOT_BASE_URL;
const HEADERS = { "api_access_token": process.env.CHATWOOT_BOT_TOKEN, "Content-Type": "application/json" };
const MODEL_SECONDS = Number(process.env.MODEL_SECONDS || "0");
// the same table as rules.py
const RULES = [
  { keywords: ["billing", "payment"], reply: "I'm transferring you to our billing team.", team: "billing" },
  { keywords: ["technical", "bug"], reply: "Let me connect you with our technical support team.", team: "technical" },
  { keywords: ["human", "agent", "person"], reply: "Let me connect you with a human agent." },
];
const TEAMS = { billing: 1, technical: 2 };
const FALLBACK = "How can I help you today? You can ask about billing or technical issues.";

function match(text) {
  const words = new Set(text.toLowerCase().match(/\w+/g) || []);
  return RULES.find((rule) => rule.keywords.some((k) => words.has(k)));
}

function post(path, body) {
  return fetch(BASE + path, { method: "POST", headers: HEADERS, body: JSON.stringify(body) });
}

const app = express();
app.use(express.json({ limit: "1mb" }));

app.post("/webhook", async (req, res) => {
  const data = req.body || {};
  if (data.event !== "message_created" || data.message_type !== "incoming") return res.sendStatus(200);
  const conv = `/api/v1/accounts/${data.account.id}/conversations/${data.conversation.id}`;
  if (MODEL_SECONDS) {
    const answer = await (await post(`/__bench/model?seconds=${MODEL_SECONDS}`, {})).json();
    await post(`${conv}/messages`, { content: answer.text, message_type: "outgoing" });
    return res.sendStatus(200);
  }
  const rule = match(data.content || "");
  if (!rule) {
    await post(`${conv}/messages`, { content: FALLBACK, message_type: "outgoing" });
    return res.sendStatus(200);
  }
  await post(`${conv}/messages`, { content: rule.reply, message_type: "outgoing" });
  if (rule.team) await post(`${conv}/assignments`, { team_id: TEAMS[rule.team] });
  await post(`${conv}/toggle_status`, { status: "open" });
  res.sendStatus(200);
});

app.listen(Number(process.env.PORT), "127.0.0.1");
