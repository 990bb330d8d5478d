/*
 * The knee-pain coach widget. Paste on any page of an allowed site (BOT_CORS_ORIGINS):
 *   <script src="https://BOT-HOST/widget.js" data-title="Ask our coach" defer></script>
 * A floating button opens a chat panel in a Shadow DOM (the page's CSS and the widget's can't touch each
 * other). It talks only to the host it was loaded from, builds every element with textContent (it never
 * parses an answer or a question as HTML), and keeps the conversation for the visit (sessionStorage).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__kneeCoachWidget) return;
  window.__kneeCoachWidget = true;

  var API = new URL(script.src, window.location.href).origin;
  var TITLE = script.getAttribute("data-title") || "Ask the coach";
  var STORE_KEY = "knee-coach:" + API;
  var EXAMPLES = [
    "Where should my feet go on the leg press?",
    "Why do my knees hurt after leg day?",
    "Is it bad to lock my knees at the top?"
  ];
  var MESSAGES = {
    network: "Sorry — the coach can't be reached right now. Please check your connection and try again.",
    refused: "Sorry — the coach isn't available on this site.",
    busy: "The coach is getting a lot of questions right now. Please wait a moment and try again.",
    failed: "Sorry — something went wrong while answering. Please try again."
  };

  var CSS = [
    ":host { all: initial; }",
    "* { box-sizing: border-box; }",
    ".root { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #1f2937; }",
    ".launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; border: 0; border-radius: 999px;",
    "  background: #1d4ed8; color: #fff; padding: 12px 18px; font: inherit; font-weight: 600; cursor: pointer;",
    "  box-shadow: 0 6px 20px rgba(0,0,0,.25); }",
    ".launcher:focus-visible, button:focus-visible, textarea:focus-visible, a:focus-visible {",
    "  outline: 3px solid #f59e0b; outline-offset: 2px; }",
    ".panel { position: fixed; right: 20px; bottom: 80px; z-index: 2147483000; width: 380px; max-width: calc(100vw - 24px);",
    "  height: 600px; max-height: calc(100vh - 100px); background: #fff; border-radius: 14px; display: flex;",
    "  flex-direction: column; box-shadow: 0 12px 40px rgba(0,0,0,.3); overflow: hidden; }",
    ".panel[hidden] { display: none; }",
    "@media (max-width: 480px) { .panel { right: 12px; left: 12px; width: auto; bottom: 76px; height: calc(100vh - 96px); } }",
    "header { background: #1d4ed8; color: #fff; padding: 10px 12px; display: flex; align-items: center; gap: 8px; }",
    "header h2 { font-size: 16px; margin: 0; flex: 1; }",
    "header button { background: transparent; color: #fff; border: 1px solid rgba(255,255,255,.6); border-radius: 6px;",
    "  padding: 3px 8px; font: inherit; font-size: 13px; cursor: pointer; }",
    ".disclaimer { background: #eff6ff; color: #1e3a8a; font-size: 12.5px; padding: 6px 12px; margin: 0;",
    "  border-bottom: 1px solid #dbeafe; }",
    ".log { flex: 1; overflow-y: auto; padding: 10px 12px; }",
    ".msg { margin: 8px 0; padding: 8px 10px; border-radius: 10px; white-space: normal; overflow-wrap: anywhere; }",
    ".msg p { margin: 4px 0; } .msg ul { margin: 4px 0; padding-left: 20px; }",
    ".user { background: #e0e7ff; margin-left: 40px; white-space: pre-wrap; }",
    ".bot { background: #f3f4f6; margin-right: 12px; }",
    ".bot.escalated { background: #fff7ed; border: 2px solid #b45309; border-left-width: 7px; color: #431407; }",
    ".bot.notice { background: #fef2f2; border-left: 4px solid #b91c1c; }",
    ".bot.out_of_scope, .bot.not_found, .bot.invalid { border-left: 4px solid #64748b; }",
    ".label { font-weight: 700; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }",
    ".cite { font-weight: 700; color: #1d4ed8; background: none; border: 0; padding: 0 1px; cursor: pointer; font: inherit;",
    "  text-decoration: underline; }",
    ".small { font-size: 12px; color: #4b5563; }",
    "details { margin-top: 6px; } summary { cursor: pointer; font-size: 13px; font-weight: 600; }",
    ".source { border: 1px solid #e5e7eb; border-radius: 8px; padding: 6px 8px; margin: 6px 0; background: #fff;",
    "  font-size: 13px; white-space: pre-line; }",
    ".source.flash { box-shadow: 0 0 0 3px #f59e0b; }",
    "mark { background: #fde68a; color: #1c1917; }",
    ".rate { display: flex; gap: 6px; margin-top: 6px; align-items: center; }",
    ".rate button { border: 1px solid #d1d5db; background: #fff; border-radius: 6px; padding: 2px 8px; cursor: pointer; font: inherit; }",
    ".rate button[aria-pressed=true] { background: #dbeafe; border-color: #1d4ed8; }",
    ".examples { display: flex; flex-direction: column; gap: 6px; margin: 8px 0; }",
    ".examples button { text-align: left; border: 1px solid #c7d2fe; background: #eef2ff; border-radius: 8px;",
    "  padding: 6px 8px; font: inherit; font-size: 13.5px; cursor: pointer; color: #1e3a8a; }",
    "form { display: flex; gap: 6px; padding: 8px; border-top: 1px solid #e5e7eb; }",
    "textarea { flex: 1; resize: none; font: inherit; padding: 7px 8px; border: 1px solid #9ca3af; border-radius: 8px; min-height: 40px; }",
    "form button { background: #1d4ed8; color: #fff; border: 0; border-radius: 8px; padding: 0 14px; font: inherit; font-weight: 600; cursor: pointer; }",
    "form button[disabled] { opacity: .6; cursor: wait; }",
    ".sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }"
  ].join("\n");

  // -- helpers: every node is built from text ------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "className") node.className = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function stripDisclaimer(text, disclaimer) {
    var body = text;
    if (disclaimer && body.slice(-disclaimer.length) === disclaimer) body = body.slice(0, -disclaimer.length);
    body = body.replace(/\s+$/, "");
    if (body.slice(-3) === "---") body = body.slice(0, -3);
    return body.replace(/\s+$/, "");
  }

  // Inline Markdown of the answers: **bold**, *emphasis* and [n] markers (as buttons to the sources).
  function inline(parent, text, onCite) {
    var pattern = /\*\*([^*]+)\*\*|\*([^*]+)\*|\[(\d+)\]/g, last = 0, match;
    while ((match = pattern.exec(text))) {
      if (match.index > last) parent.appendChild(document.createTextNode(text.slice(last, match.index)));
      if (match[1] !== undefined) parent.appendChild(el("strong", { text: match[1] }));
      else if (match[2] !== undefined) parent.appendChild(el("em", { text: match[2] }));
      else if (onCite) parent.appendChild(onCite(Number(match[3])));
      else parent.appendChild(document.createTextNode(match[0]));
      last = pattern.lastIndex;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  // Block Markdown of the answers: paragraphs and (nested) "- " lists.
  function renderText(container, text, onCite) {
    text.split(/\n\s*\n/).forEach(function (block) {
      var lines = block.split("\n").filter(function (l) { return l.trim(); });
      if (!lines.length) return;
      if (/^\s*[-*] /.test(lines[0])) {
        var list = el("ul"), item = null;
        lines.forEach(function (line) {
          if (/^[-*] /.test(line)) { item = el("li"); inline(item, line.replace(/^[-*] /, ""), onCite); list.appendChild(item); }
          else if (item) { item.appendChild(el("br")); inline(item, line.trim().replace(/^[-*] /, "• "), onCite); }
        });
        container.appendChild(list);
      } else {
        var p = el("p");
        lines.forEach(function (line, i) { if (i) p.appendChild(el("br")); inline(p, line.trim().replace(/^[-*] /, "• "), onCite); });
        container.appendChild(p);
      }
    });
  }

  function highlighted(citation) {
    var node = el("div", { className: "source", tabindex: "-1" });
    var where = el("div", { className: "small" });
    where.appendChild(el("strong", { text: "[" + citation.n + "] " }));
    where.appendChild(document.createTextNode(citation.title + " › " + citation.section));
    node.appendChild(where);
    var body = el("div"), at = citation.quote ? citation.text.indexOf(citation.quote) : -1;
    if (at < 0) body.textContent = citation.text;
    else {
      body.appendChild(document.createTextNode(citation.text.slice(0, at)));
      body.appendChild(el("mark", { text: citation.quote }));
      body.appendChild(document.createTextNode(citation.text.slice(at + citation.quote.length)));
    }
    node.appendChild(body);
    return node;
  }

  // -- state ------------------------------------------------------------------------------------
  var state = { history: [], turns: [] };  // turns: {question, answer|null, notice|null, rating}
  try {
    var saved = JSON.parse(window.sessionStorage.getItem(STORE_KEY) || "null");
    if (saved && Array.isArray(saved.history) && Array.isArray(saved.turns)) state = saved;
  } catch (e) { /* storage blocked: the conversation lasts as long as the page */ }
  function save() {
    try { window.sessionStorage.setItem(STORE_KEY, JSON.stringify(state)); } catch (e) { /* ignore */ }
  }

  // -- the widget -------------------------------------------------------------------------------
  var host = el("div", { id: "knee-coach-widget" });
  var shadow = host.attachShadow({ mode: "open" });
  var root = el("div", { className: "root" });
  shadow.appendChild(el("style", { text: CSS }));
  shadow.appendChild(root);

  var launcher = el("button", { className: "launcher", type: "button", "aria-expanded": "false",
                                "aria-controls": "knee-coach-panel", text: TITLE });
  var log = el("div", { className: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  var input = el("textarea", { rows: "1", maxlength: "1000", "aria-label": "Your question",
                               placeholder: "Your question…" });
  var sendButton = el("button", { type: "submit", text: "Ask" });
  var form = el("form", {}, [input, sendButton]);
  var newButton = el("button", { type: "button", text: "New" , "aria-label": "New conversation" });
  var closeButton = el("button", { type: "button", text: "✕", "aria-label": "Close the chat" });
  var disclaimer = el("p", { className: "disclaimer", role: "note",
    text: "General information from fitness articles, not medical advice. If pain is severe, persists or worries you, see a doctor or physical therapist." });
  var panel = el("section", { className: "panel", id: "knee-coach-panel", role: "dialog", "aria-label": TITLE, hidden: "" }, [
    el("header", {}, [el("h2", { text: TITLE }), newButton, closeButton]), disclaimer, log, form
  ]);
  root.appendChild(launcher);
  root.appendChild(panel);

  function setOpen(open) {
    if (open) panel.removeAttribute("hidden"); else panel.setAttribute("hidden", "");
    launcher.setAttribute("aria-expanded", String(open));
    launcher.textContent = open ? "Close " + TITLE.toLowerCase() : TITLE;
    if (open) { input.focus(); log.scrollTop = log.scrollHeight; } else launcher.focus();
  }
  launcher.addEventListener("click", function () { setOpen(panel.hasAttribute("hidden")); });
  closeButton.addEventListener("click", function () { setOpen(false); });
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") setOpen(false); });
  newButton.addEventListener("click", function () { state = { history: [], turns: [] }; save(); draw(); input.focus(); });

  function examples() {
    var box = el("div", { className: "examples" });
    EXAMPLES.forEach(function (q) {
      var b = el("button", { type: "button", text: q });
      b.addEventListener("click", function () { ask(q); });
      box.appendChild(b);
    });
    return box;
  }

  function rateButtons(turn) {
    var row = el("div", { className: "rate", role: "group", "aria-label": "Was this answer helpful?" });
    row.appendChild(el("span", { className: "small", text: "Helpful?" }));
    [["up", "Yes", "Yes, helpful"], ["down", "No", "No, not helpful"]].forEach(function (choice) {
      var b = el("button", { type: "button", text: choice[1], "aria-label": choice[2],
                             "aria-pressed": String(turn.rating === choice[0]) });
      b.addEventListener("click", function () { rate(turn, choice[0], row); });
      row.appendChild(b);
    });
    if (turn.rating) row.appendChild(el("span", { className: "small", text: "Thanks for the feedback." }));
    return row;
  }

  function botMessage(turn, index) {
    var box;
    if (!turn.answer) {
      box = el("div", { className: "msg bot notice" });
      box.appendChild(el("p", { text: turn.notice || MESSAGES.failed }));
      if (turn.pending !== undefined) { box.className = "msg bot"; box.setAttribute("aria-busy", "true"); box.firstChild.textContent = turn.pending || "…"; }
      return box;
    }
    var answer = turn.answer;
    box = el("div", { className: "msg bot " + answer.status, "data-status": answer.status });
    if (answer.status === "escalated") box.appendChild(el("div", { className: "label", text: "⚠️ Medical warning" }));
    var sources = {};
    renderText(box, stripDisclaimer(answer.answer, answer.disclaimer), function (n) {
      var b = el("button", { type: "button", className: "cite", text: "[" + n + "]", "aria-label": "Source " + n });
      b.addEventListener("click", function () {
        var target = sources[n]; if (!target) return;
        target.details.open = true; target.node.scrollIntoView({ block: "nearest" }); target.node.focus();
        target.node.classList.add("flash"); setTimeout(function () { target.node.classList.remove("flash"); }, 1500);
      });
      return b;
    });
    if (answer.citations && answer.citations.length) {
      var details = el("details", {}, [el("summary", { text: "Sources (" + answer.citations.length + ")" })]);
      answer.citations.forEach(function (c) { var node = highlighted(c); sources[c.n] = { node: node, details: details }; details.appendChild(node); });
      box.appendChild(details);
    }
    box.appendChild(el("p", { className: "small", text: answer.disclaimer }));
    if (answer.status === "out_of_scope") box.appendChild(examples());
    box.appendChild(rateButtons(turn));
    return box;
  }

  function draw() {
    log.textContent = "";
    if (!state.turns.length) {
      log.appendChild(el("p", { className: "small", text: "Ask about knee pain after the leg press. Answers quote fitness articles and cite them. For example:" }));
      log.appendChild(examples());
    }
    state.turns.forEach(function (turn, index) {
      log.appendChild(el("div", { className: "msg user", text: turn.question }));
      log.appendChild(botMessage(turn, index));
    });
    log.scrollTop = log.scrollHeight;
  }

  function rate(turn, rating, row) {
    var position = state.turns.indexOf(turn);
    turn.rating = rating; save();
    var history = [];
    state.turns.slice(0, position).forEach(function (t) {
      if (t.answer) history.push({ role: "user", content: t.question }, { role: "assistant", content: t.answer.answer });
    });
    fetch(API + "/api/feedback", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ rating: rating, history: history, answer: turn.answer }) })
      .catch(function () { /* a lost rating is not worth an error message */ });
    row.replaceWith(rateButtons(turn));
  }

  function failure(response) {
    if (!response) return MESSAGES.network;
    if (response.status === 429) return MESSAGES.busy;
    if (response.status === 403) return MESSAGES.refused;
    return MESSAGES.failed;
  }

  // A request that failed outright is either a bot that can't be reached or a site it refuses (whose replies
  // the browser hides): /api/site answers any site, saying whether this one is allowed.
  function unreachable() {
    return fetch(API + "/api/site")
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (site) { return site && site.allowed === false ? MESSAGES.refused : MESSAGES.network; })
      .catch(function () { return MESSAGES.network; });
  }

  // Reads the server-sent events of /api/chat/stream: "delta" pieces, then the "answer".
  function readEvents(response, onEvent) {
    var reader = response.body.getReader(), decoder = new TextDecoder(), buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        buffer += decoder.decode(chunk.value || new Uint8Array(), { stream: !chunk.done });
        var parts = buffer.split(/\r?\n\r?\n/);
        buffer = chunk.done ? "" : parts.pop();
        parts.forEach(function (part) {
          var event = "message", data = [];
          part.split(/\r?\n/).forEach(function (line) {
            if (line.indexOf("event:") === 0) event = line.slice(6).trim();
            else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
          });
          if (data.length) onEvent(event, JSON.parse(data.join("\n")));
        });
        if (!chunk.done) return pump();
      });
    }
    return pump();
  }

  var busy = false;
  function ask(question) {
    question = (question || "").trim();
    if (!question || busy) return;
    busy = true; sendButton.disabled = true; input.value = "";
    var turn = { question: question, answer: null, notice: null, pending: "" };
    state.turns.push(turn); draw();
    var pendingNode = log.lastChild;
    var history = state.history.slice();
    fetch(API + "/api/chat/stream", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ message: question, history: history }) })
      .then(function (response) {
        if (!response.ok || !response.body) { turn.notice = failure(response); return; }
        return readEvents(response, function (event, data) {
          if (event === "delta") {
            turn.pending += data.text;
            pendingNode.firstChild.textContent = stripDisclaimer(turn.pending, "").replace(/---\s*$/, "");
          } else if (event === "answer") {
            turn.answer = data;
          } else if (event === "error") {
            turn.notice = data.message || MESSAGES.failed;
          }
        });
      })
      .catch(function () {
        return unreachable().then(function (message) { turn.notice = turn.notice || message; });
      })
      .then(function () {
        delete turn.pending;
        if (turn.answer) {
          state.history.push({ role: "user", content: question }, { role: "assistant", content: turn.answer.answer });
        } else if (!turn.notice) turn.notice = MESSAGES.failed;
        save(); draw();
        busy = false; sendButton.disabled = false; input.focus();
      });
  }

  form.addEventListener("submit", function (event) { event.preventDefault(); ask(input.value); });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); ask(input.value); }
  });

  function mount() { document.body.appendChild(host); draw(); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
