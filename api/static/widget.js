/*! Kefu chat widget. A site embeds it with one line:
 *    <script src="https://kefu.example/widget.js" data-kefu-key="KEY" defer></script>
 *  optional: data-kefu-lang="zh|en", data-kefu-title="...", data-kefu-color="#0b6bcb".
 *
 *  Plain JS, no framework. It talks only to the Kefu server it was loaded from (its /widget/v1 routes), draws
 *  itself in a shadow root with a constructable stylesheet (no inline style or script, so a strict
 *  Content-Security-Policy naming Kefu's origin is enough), and builds every message from text (textContent,
 *  never HTML: no markup, images or links from anyone's text reach the page). The visitor's token and
 *  conversation are kept in the site's localStorage, so the chat survives navigation and reloads; the key itself
 *  gives no power but to start a visitor on the origins it names.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.KefuWidget) return;
  var CSS = "__KEFU_CSS__";
  var KEY = script.getAttribute("data-kefu-key") || "";
  var BASE = script.src.replace(/\/widget\.js(?:[?#].*)?$/, "");
  var API = BASE + "/widget/v1/";
  var WAITING = "waiting_agent", WITH_AGENT = "with_agent", RESOLVED = "resolved";
  var SVG = "http://www.w3.org/2000/svg";
  var BUBBLE = "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H10l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z";
  var THUMB = "M2 10h4v11H2zM8 10l4-8c1.7 0 3 1.3 3 3v3h5.5c1.1 0 2 .9 2 2l-2 9c-.2.6-.8 1-1.5 1H8z";

  var TEXT = {
    en: {
      launcher: "Chat with us", title: "Customer service", close: "Close chat", log: "Conversation",
      input: "Your message", placeholder: "Ask a question…", send: "Send", person: "Talk to a person",
      typing: "Writing a reply…", helpful: "Helpful", unhelpful: "Not helpful", sources: "Sources",
      you: "You", kefu: "Assistant", agent: "{name} (support team)", unread: "new reply",
      waiting: "Waiting for a person · you are number {n} in the queue",
      withAgent: "{agent} from our support team is with you", resolved: "This conversation was resolved. Write any time to start again.",
      unavailable: "Sorry, the chat is not available on this page.", error: "Something went wrong: {m}",
      page: "p. {n}"
    },
    zh: {
      launcher: "在线客服", title: "在线客服", close: "关闭聊天", log: "对话",
      input: "您的消息", placeholder: "请输入您的问题…", send: "发送", person: "转人工客服",
      typing: "正在回复…", helpful: "有帮助", unhelpful: "没有帮助", sources: "来源",
      you: "您", kefu: "智能客服", agent: "客服 {name}", unread: "新回复",
      waiting: "正在为您转接人工客服 · 您排在第 {n} 位",
      withAgent: "客服 {agent} 正在为您服务", resolved: "本次对话已解决，如需帮助可随时留言。",
      unavailable: "抱歉，此页面无法使用在线客服。", error: "出错了：{m}",
      page: "第 {n} 页"
    }
  };

  function pickLanguage() {
    var given = (script.getAttribute("data-kefu-lang") || "").toLowerCase();
    if (given === "zh" || given === "en") return given;
    var page = document.documentElement.lang || navigator.language || "en";
    return /^zh/i.test(page) ? "zh" : "en";
  }
  var LANG = pickLanguage();
  function t(name, values) {
    return TEXT[LANG][name].replace(/\{(\w+)\}/g, function (_, k) { return values && values[k] != null ? String(values[k]) : ""; });
  }

  // -- what the site's storage keeps: the visitor's token and conversation -----------------------------------

  var STORE_KEY = "kefu-widget:" + (KEY.split("_")[1] || "key");
  var store = { token: null, session: null, open: false };
  try { Object.assign(store, JSON.parse(localStorage.getItem(STORE_KEY) || "{}")); } catch (e) { /* none kept */ }
  function save() {
    try { localStorage.setItem(STORE_KEY, JSON.stringify(store)); } catch (e) { /* storage refused: this page only */ }
  }
  function forget(all) {
    store.session = null;
    if (all) store.token = null;
    save();
  }

  // -- talking to Kefu --------------------------------------------------------------------------------------

  function Failure(message, status) { var e = new Error(message); e.status = status; return e; }
  async function failure(response) {
    var message = "HTTP " + response.status;
    try { message = (await response.json()).error.message || message; } catch (e) { /* not JSON */ }
    return Failure(message, response.status);
  }
  function post(path, body, signal) {
    var headers = { "Content-Type": "application/json" };
    if (store.token) headers.Authorization = "Bearer " + store.token;
    return fetch(API + path, { method: "POST", mode: "cors", credentials: "omit", cache: "no-store",
                               headers: headers, body: JSON.stringify(body), signal: signal });
  }
  var starting = null;
  function visitor() {
    if (store.token) return Promise.resolve();
    if (!starting) {
      starting = (async function () {
        var response;
        try { response = await post("visitors", { key: KEY }); } catch (e) { throw Failure(t("unavailable"), 0); }
        if (response.status === 401 || response.status === 403) throw Failure(t("unavailable"), response.status);
        if (!response.ok) throw await failure(response);
        store.token = (await response.json()).token;
        save();
      })().finally(function () { starting = null; });
    }
    return starting;
  }
  // A call as the visitor; a token that expired (or whose key was replaced) is replaced once, with a new
  // conversation: the old one belonged to the old token.
  async function send(path, body, signal) {
    await visitor();
    var response = await post(path, body(), signal);
    if (response.status === 401) {
      forget(true);
      await visitor();
      response = await post(path, body(), signal);
    }
    if (!response.ok) throw await failure(response);
    return response;
  }
  async function call(path, body) { return (await send(path, body)).json(); }
  // Server-sent events read from a fetch (EventSource cannot send the token): data lines of JSON, [DONE] last.
  async function events(response, each) {
    var reader = response.body.getReader(), decoder = new TextDecoder(), buffer = "";
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) return;
      buffer += decoder.decode(chunk.value, { stream: true });
      var end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        var lines = buffer.slice(0, end).split("\n");
        buffer = buffer.slice(end + 2);
        for (var i = 0; i < lines.length; i++) {
          if (lines[i].indexOf("data: ") !== 0) continue;
          var data = lines[i].slice(6);
          if (data === "[DONE]") return;
          var value = JSON.parse(data);
          if (value.error) throw Failure(value.error.message, 500);
          each(value);
        }
      }
    }
  }

  // -- building the page's part ------------------------------------------------------------------------------

  var uid = 0;
  function h(tag, cls, text) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    if (text != null) el.textContent = text;
    return el;
  }
  function icon(path, flip) {
    var svg = document.createElementNS(SVG, "svg"), p = document.createElementNS(SVG, "path");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    p.setAttribute("d", path);
    if (flip) p.setAttribute("transform", "matrix(1 0 0 -1 0 24)");
    svg.appendChild(p);
    return svg;
  }
  function clip(text, limit) { text = String(text || ""); return text.length > limit ? text.slice(0, limit - 1) + "…" : text; }

  var host = h("div");
  host.id = "kefu-widget";
  var root = host.attachShadow({ mode: "open" });
  try {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    var sheets = [sheet];
    var color = script.getAttribute("data-kefu-color");
    if (color && window.CSS && CSS.supports("color", color)) {
      var custom = new CSSStyleSheet();
      custom.replaceSync(":host { --kefu-color: " + color + "; }");
      sheets.push(custom);
    }
    root.adoptedStyleSheets = sheets;
  } catch (e) {
    var link = h("link");
    link.rel = "stylesheet";
    link.href = BASE + "/widget.css";
    root.appendChild(link);
  }

  var launcher = h("button", "launcher");
  launcher.type = "button";
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "kefu-panel");
  var badge = h("span", "badge");
  badge.hidden = true;
  badge.appendChild(h("span", "sr", t("unread")));
  launcher.append(icon(BUBBLE), h("span", null, t("launcher")), badge);

  var panel = h("section", "panel");
  panel.id = "kefu-panel";
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-labelledby", "kefu-title");
  var head = h("div", "head"), heading = h("h2", null, script.getAttribute("data-kefu-title") || t("title"));
  heading.id = "kefu-title";
  var closer = h("button", "close", "×");
  closer.type = "button";
  closer.setAttribute("aria-label", t("close"));
  head.append(heading, closer);
  var log = h("div", "log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-label", t("log"));
  log.tabIndex = 0;
  var typing = h("div", "typing");
  typing.setAttribute("aria-hidden", "true");
  typing.append(h("span"), h("span"), h("span"));
  var status = h("p", "status");
  status.setAttribute("role", "status");
  var bar = h("div", "bar"), person = h("button", "person", t("person"));
  person.type = "button";
  bar.appendChild(person);
  var form = h("form"), label = h("label", "sr", t("input")), input = h("textarea"), sendButton = h("button", "send", t("send"));
  input.id = "kefu-input";
  label.htmlFor = "kefu-input";
  input.rows = 1;
  input.placeholder = t("placeholder");
  input.maxLength = 4000;
  sendButton.type = "submit";
  var typingNote = h("span", "sr");
  typingNote.setAttribute("aria-live", "polite");
  form.append(label, input, sendButton, typingNote);
  panel.append(head, log, status, bar, form);
  root.append(launcher, panel);

  // -- messages ----------------------------------------------------------------------------------------------

  // Text as text: paragraphs, "- " and "1. " lists and **bold** become elements; everything else stays literal.
  function inline(el, text) {
    text = text.replace(/!?\[([^\]]+)\]\(([^()\s]*)\)/g, function (_, words, url) { return url ? words + " (" + url + ")" : words; });
    text.split(/\*\*(.+?)\*\*/).forEach(function (part, i) {
      if (part) el.appendChild(i % 2 ? h("strong", null, part) : document.createTextNode(part));
    });
  }
  function renderText(el, text) {
    el.textContent = "";
    var list = null;
    String(text || "").split("\n").forEach(function (line) {
      var item = /^\s*(?:[-*•]|(\d+)[.)])\s+(.*)$/.exec(line);
      if (item) {
        var ordered = !!item[1];
        if (!list || list.ordered !== ordered) { list = h(ordered ? "ol" : "ul"); list.ordered = ordered; el.appendChild(list); }
        var li = h("li");
        inline(li, item[2]);
        list.appendChild(li);
        return;
      }
      list = null;
      if (!line.trim()) return;
      var p = h("p");
      inline(p, line.replace(/^#{1,6}\s+/, ""));
      el.appendChild(p);
    });
  }

  function chips(message, sources) {
    var group = h("div", "chips");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", t("sources"));
    sources.forEach(function (source) {
      var chip = h("button", "chip", "[" + source.n + "] " + clip(source.section || source.title, 28));
      var id = "kefu-passage-" + (++uid);
      chip.type = "button";
      chip.title = source.title || "";
      chip.setAttribute("aria-expanded", "false");
      chip.setAttribute("aria-controls", id);
      chip.addEventListener("click", function () { togglePassage(message, chip, source, id); });
      group.appendChild(chip);
    });
    return group;
  }
  function togglePassage(message, chip, source, id) {
    var shown = message.querySelector(".passage"), same = shown && shown.id === id;
    if (shown) shown.remove();
    message.querySelectorAll(".chip").forEach(function (c) { c.setAttribute("aria-expanded", "false"); });
    if (same) return;
    var passage = h("div", "passage");
    passage.id = id;
    passage.setAttribute("role", "region");
    passage.setAttribute("aria-label", "[" + source.n + "] " + (source.title || ""));
    var where = [source.section !== source.title ? source.section : "", source.page ? t("page", { n: source.page }) : "", source.source];
    passage.append(h("strong", null, "[" + source.n + "] " + (source.title || "")), h("p", null, source.text || ""),
                   h("div", "src", where.filter(Boolean).join(" · ")));
    message.appendChild(passage);
    chip.setAttribute("aria-expanded", "true");
  }

  function rating(id, current) {
    var group = h("div", "rate"), buttons = {};
    group.setAttribute("role", "group");
    [["up", "helpful", false], ["down", "unhelpful", true]].forEach(function (choice) {
      var button = h("button");
      button.type = "button";
      button.setAttribute("aria-label", t(choice[1]));
      button.setAttribute("aria-pressed", String(current === choice[0]));
      button.appendChild(icon(THUMB, choice[2]));
      button.addEventListener("click", async function () {
        try {
          var done = await call("feedback", function () { return { message_id: id, rating: choice[0] }; });
          Object.keys(buttons).forEach(function (k) { buttons[k].setAttribute("aria-pressed", String(k === done.rating)); });
        } catch (e) { note(t("error", { m: e.message })); }
      });
      buttons[choice[0]] = button;
      group.appendChild(button);
    });
    return group;
  }

  var known = {};  // ids of the stored messages on show
  var after = 0;  // the newest of them
  function messageElement(m) {
    var el = h("div", "msg");
    el.setAttribute("data-kefu-role", m.role);
    if (m.id) el.setAttribute("data-kefu-id", String(m.id));
    fill(el, m);
    return el;
  }
  function fill(el, m) {
    el.textContent = "";
    var speaker = { user: t("you"), assistant: t("kefu"), agent: t("agent", { name: m.author || "" }) }[m.role];
    if (m.role === "agent") el.appendChild(h("div", "who", speaker));
    else if (speaker) el.appendChild(h("span", "sr", speaker + ": "));
    var body = h("div", "body");
    renderText(body, m.text);
    el.appendChild(body);
    if (m.sources && m.sources.length) el.appendChild(chips(el, m.sources));
    if (m.rateable && m.id) el.appendChild(rating(m.id, m.rating));
  }
  function scroll() { log.scrollTop = log.scrollHeight; }
  function append(el) {
    log.insertBefore(el, typing.parentNode === log ? typing : null);
    scroll();
    return el;
  }
  function note(text) { return append(messageElement({ role: "system", text: text })); }
  function remember(id) {
    known[id] = true;
    if (id > after) after = id;
  }
  // Stored messages: new ones drawn (the turn's own replace what was drawn while it streamed), state applied.
  function receive(view, drawn) {
    (view.messages || []).forEach(function (m) {
      if (known[m.id]) return;
      var placeholder = drawn && drawn[m.role];
      if (placeholder && !placeholder.hasAttribute("data-kefu-id")) {
        placeholder.setAttribute("data-kefu-id", String(m.id));
        fill(placeholder, m);
        drawn[m.role] = null;
      } else {
        append(messageElement(m));
        if (m.role === "agent" && panel.hidden) badge.hidden = false;
      }
      remember(m.id);
    });
    if (view.status) state(view);
  }

  // -- the conversation's state: queue position, agent, and live updates while a person handles it ----------

  var current = null, listening = null;
  function state(view) {
    current = view.status;
    var handed = current === WAITING || current === WITH_AGENT;
    status.textContent = current === WAITING ? t("waiting", { n: view.queue_position || 1 })
      : current === WITH_AGENT ? t("withAgent", { agent: view.agent || "" })
      : current === RESOLVED ? t("resolved") : "";
    person.disabled = handed;
    if (handed) listen();
    else if (listening) listening.abort();
  }
  function sleep(ms) { return new Promise(function (done) { setTimeout(done, ms); }); }
  async function listen() {
    if (listening) return;
    var control = listening = new AbortController(), pause = 1000;
    try {
      while (!control.signal.aborted && store.session && (current === WAITING || current === WITH_AGENT)) {
        try {
          var response = await send("events", function () { return { session_id: store.session, after: after }; }, control.signal);
          await events(response, function (view) { receive(view); });
          pause = 1000;
        } catch (e) {
          if (control.signal.aborted) break;
          if (e.status === 403 || e.status === 404) { forget(false); break; }
          await sleep(pause);
          pause = Math.min(pause * 2, 30000);
        }
      }
    } finally {
      if (listening === control) listening = null;
    }
  }

  // -- what the visitor does -----------------------------------------------------------------------------------

  function busy(on) {
    sendButton.disabled = on;
    log.setAttribute("aria-busy", String(on));
    typingNote.textContent = on ? t("typing") : "";
    if (on) append(typing);
    else typing.remove();
  }
  function problem(e) { note(e.status === 0 || e.status === 401 ? e.message : t("error", { m: e.message })); }

  async function ask(text) {
    var drawn = { user: append(messageElement({ role: "user", text: text })), assistant: null }, written = "";
    busy(true);
    try {
      var response = await send("ask", function () { return { question: text, session_id: store.session }; });
      await events(response, function (value) {
        if (value.delta != null) {
          typing.remove();
          if (!drawn.assistant) drawn.assistant = append(messageElement({ role: "assistant", text: "" }));
          written += value.delta;
          renderText(drawn.assistant.querySelector(".body"), written);
          scroll();
        }
        if (value.answer) {
          store.session = value.answer.session_id;
          save();
          receive(value, drawn);
          if (!drawn.assistant && !value.answer.message_id && value.answer.text) note(value.answer.text);
        }
      });
    } catch (e) {
      problem(e);
    } finally {
      busy(false);
    }
  }

  async function talkToPerson() {
    person.disabled = true;
    try {
      var value = await call("handoff", function () { return { session_id: store.session, language: LANG }; });
      store.session = value.answer.session_id;
      save();
      if (!value.answer.message_id && value.answer.text) append(messageElement({ role: "assistant", text: value.answer.text }));
      receive(value);
    } catch (e) {
      person.disabled = false;
      problem(e);
    }
  }

  async function restore() {
    if (!store.session) return;
    try {
      receive(await call("conversation", function () { return { session_id: store.session, after: 0 }; }));
    } catch (e) {
      if (e.status === 403 || e.status === 404 || e.status === 400) forget(false);
    }
  }

  function open(focus) {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    badge.hidden = true;
    store.open = true;
    save();
    scroll();
    if (focus) input.focus();
  }
  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    store.open = false;
    save();
    launcher.focus();
  }

  launcher.addEventListener("click", function () { if (panel.hidden) open(true); else close(); });
  closer.addEventListener("click", close);
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") { e.preventDefault(); close(); } });
  person.addEventListener("click", talkToPerson);
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text || sendButton.disabled) return;
    input.value = "";
    ask(text);
  });

  function start() {
    document.body.appendChild(host);
    if (store.open) open(false);
    restore();
  }
  window.KefuWidget = { open: function () { open(true); }, close: close };
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
