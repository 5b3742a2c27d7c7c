"use strict";
// Steps through the engine's recorded backward (or forward) pass. Every number shown comes from the data
// block written by tinygrad_lab.explain; this script only places text and highlights the picture.
(function () {
  const D = JSON.parse(document.getElementById("data").textContent);
  const T = D.tensors, O = D.ops, S = D.steps;
  const $ = (id) => document.getElementById(id);
  const svg = document.querySelector("#graph svg");
  const nodeEl = {}, edgeEls = {};
  let mode = "backward", step = 0, timer = null;

  if (svg) {
    const natural = parseFloat(svg.getAttribute("width"));  // in pt: never scale a small graph up past 1.5x
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    if (natural > 0) svg.style.maxWidth = (natural * 2) + "px";
    const vb = svg.getAttribute("viewBox").split(/\s+/).map(Number);  // room for the tags and the last badge
    svg.setAttribute("viewBox", [vb[0] - 24, vb[1], vb[2] + 24, vb[3] + 16].join(" "));
    for (const g of svg.querySelectorAll("g.node")) nodeEl[g.querySelector("title").textContent] = g;
    for (const g of svg.querySelectorAll("g.edge")) {
      const key = g.querySelector("title").textContent;
      (edgeEls[key] = edgeEls[key] || []).push(g);
    }
  }
  if (D.note) $("note").textContent = D.note;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function val(v, role, extra) {  // a value exactly as the engine's numbers were formatted
    const e = el("pre", "val" + (v.small ? "" : " big"), v.text);
    e.dataset.role = role;
    for (const k in extra || {}) e.dataset[k] = extra[k];
    return e;
  }
  function tname(i) {
    const t = T[i];
    const kind = {param: "parameter", input: "input", intermediate: "", output: "output"}[t.kind];
    return t.label + (kind && !t.label.startsWith(kind) ? " (" + kind + ")" : "");
  }
  const paren = (s) => (s.includes(" ") ? "(" + s + ")" : " " + s);
  const last = () => (mode === "backward" ? S.length + 1 : O.length);
  const stepOf = {};  // op index -> its backward step (1-based)
  S.forEach((s, i) => { stepOf[s.op] = i + 1; });

  // ---- the picture -------------------------------------------------------------------------------------
  function mark(svgId, cls) { if (svgId && nodeEl[svgId]) nodeEl[svgId].classList.add(cls); }
  function badge(svgId, text, cls, side) {  // a label tucked under the node's right corner, or left of it
    const g = svgId && nodeEl[svgId];
    if (!g) return;
    const box = g.getBBox();
    const left = side === "left";
    const ns = "http://www.w3.org/2000/svg";
    const b = document.createElementNS(ns, "g");
    b.setAttribute("class", "badge " + cls);
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", left ? box.x - 4 : box.x + box.width);
    t.setAttribute("y", left ? box.y + box.height / 2 + 3 : box.y + box.height + 11);
    t.setAttribute("text-anchor", "end");
    t.textContent = text;
    const r = document.createElementNS(ns, "rect");
    b.appendChild(r);
    b.appendChild(t);
    g.appendChild(b);
    const tb = t.getBBox();
    r.setAttribute("x", tb.x - 3); r.setAttribute("y", tb.y - 1);
    r.setAttribute("width", tb.width + 6); r.setAttribute("height", tb.height + 2);
    r.setAttribute("rx", 3);
  }
  function reveal(svgId) {
    const g = svgId && nodeEl[svgId];
    if (!g) return;
    const r = g.getBoundingClientRect(), box = $("graph").getBoundingClientRect();
    if (r.top < box.top || r.bottom > box.bottom || r.left < box.left || r.right > box.right)
      g.scrollIntoView({block: "center", inline: "center"});
  }
  function clearPicture() {
    if (!svg) return;
    for (const e of svg.querySelectorAll(".current, .visited, .pending, .flow"))
      e.classList.remove("current", "visited", "pending", "flow");
    for (const b of svg.querySelectorAll("g.badge")) b.remove();
    O.forEach((o, k) => badge(o.svg, "#" + (k + 1), "tag", "left"));
  }
  function flow(op) {
    for (const inp of O[op].inputs) {
      if (inp.tensor === undefined || !T[inp.tensor].svg || !O[op].svg) continue;
      for (const e of edgeEls[T[inp.tensor].svg + "->" + O[op].svg] || []) e.classList.add("flow");
    }
  }
  // A tensor's gradient as known after `upto` backward steps: complete (the engine's), in parts, or unknown.
  function gradBadge(i, upto) {
    const t = T[i];
    if (i === D.output) return "grad " + (t.grad || D.seed).short;
    const n = t.contributions.length;
    const seen = t.contributions.filter((c) => c.step <= upto).length;
    if (n && seen === n && t.grad) return "grad " + t.grad.short;
    if (seen) return "grad: " + seen + " of " + n + " parts";
    return null;
  }
  function drawPicture() {
    clearPicture();
    if (!svg) return;
    if (mode === "backward") {
      const upto = Math.min(step, S.length);
      for (let k = 1; k < upto + (step > S.length ? 1 : 0); k++) {
        mark(O[S[k - 1].op].svg, "visited"); mark(T[O[S[k - 1].op].out].svg, "visited");
      }
      if (step === 0) mark(T[D.output].svg, "current");
      if (step >= 1 && step <= S.length) {
        const op = S[step - 1].op;
        mark(O[op].svg, "current"); mark(T[O[op].out].svg, "current"); flow(op);
        reveal(O[op].svg);
      }
      T.forEach((t, i) => { const b = gradBadge(i, upto); if (b) badge(t.svg, b, "grad"); });
      if (step > S.length) T.forEach((t) => { if (t.kind === "param") mark(t.svg, "visited"); });
    } else {
      O.forEach((o, k) => {
        if (k + 1 > step) { mark(o.svg, "pending"); mark(T[o.out].svg, "pending"); }
        else if (k + 1 < step) { mark(o.svg, "visited"); mark(T[o.out].svg, "visited"); }
      });
      if (step >= 1) {
        const o = O[step - 1];
        mark(o.svg, "current"); mark(T[o.out].svg, "current"); flow(step - 1); reveal(o.svg);
      }
    }
  }

  // ---- the card ----------------------------------------------------------------------------------------
  function head(card, title, sub) {
    const h = el("h2", null, title);
    if (sub) h.appendChild(el("small", null, sub));
    card.appendChild(h);
  }
  function inputsLine(op) {
    const p = el("p", "where");
    const parts = O[op].inputs.map((inp, pos) => {
      const name = inp.tensor === undefined ? "constant" : T[inp.tensor].label;
      const v = inp.tensor === undefined ? inp.const : T[inp.tensor].value;
      const shown = v.small ? " = " + v.text.replace(/\s+/g, " ") : " (" + v.text.split("\n")[0] + ")";
      return "input " + pos + " = " + name + shown;
    });
    const out = T[O[op].out];
    parts.push("out = " + (out.value.small ? out.value.text.replace(/\s+/g, " ") : out.value.text.split("\n")[0]));
    p.textContent = "where " + parts.join(";  ");
    return p;
  }
  // A tensor's contributions and their sum; when a hook on the tensor changed the sum, that step too.
  function accumulation(i, box) {
    const t = T[i], n = t.contributions.length;
    if (n < 2 && !t.summed) return;
    const d = el("div", "acc");
    d.appendChild(el("p", null, n < 2 ? t.label + " receives one contribution:"
      : t.label + " is used " + n + " times, so its gradient is the sum of " + n +
      " contributions (the engine adds them as they arrive):"));
    const ol = el("ol");
    t.contributions.forEach((c) => {
      const li = el("li");
      const later = c.step > step ? " (later)" : "";
      li.appendChild(el("span", "from", "from " + O[c.op].label + ", step " + c.step + later));
      li.appendChild(val(c.grad, "contrib", {to: i, step: c.step}));
      ol.appendChild(li);
    });
    d.appendChild(ol);
    if (t.grad) {
      const where = t.op === null ? t.label + ".grad"
        : "what arrives at " + O[t.op].label + " (step " + stepOf[t.op] + ")";
      if (t.summed && n > 1) {
        d.appendChild(el("p", "sum", "sum:"));
        d.appendChild(val(t.summed, "summed", {to: i}));
      }
      if (t.summed) {
        d.appendChild(el("p", "sum", "then a hook registered on " + t.label + " changed " + (n > 1 ? "the sum" : "it") +
          " into " + where + ":"));
      } else {
        d.appendChild(el("p", "sum", "sum = " + where + ":"));
      }
      d.appendChild(val(t.grad, "sum", {to: i}));
    }
    box.appendChild(d);
  }
  function backwardCard(card) {
    if (step === 0) {
      const out = T[D.output];
      head(card, "The start: the seed", "d " + out.label + " / d " + out.label);
      card.appendChild(el("p", null, "Backward starts at the output, " + out.label + ", with the gradient of the " +
        "output with respect to itself:"));
      card.appendChild(val(D.seed, "seed"));
      card.appendChild(el("p", null, "Then the engine visits each op once, in reverse topological order: an op " +
        "runs only after every op that used its output has sent its gradient back, so what arrives at it is " +
        "complete. Press \u2192 to watch the " + S.length + " steps."));
      return;
    }
    if (step > S.length) return doneCard(card);
    const s = S[step - 1], o = O[s.op], out = T[o.out];
    card.dataset.op = s.op;
    head(card, o.label, out.kind === "intermediate" && out.label.startsWith("output of") ? "backward step " + step +
      " of " + S.length : "made " + tname(o.out));
    const rule = el("div", "rule");
    rule.appendChild(el("p", null, "Local rule: " + o.rule + "."));
    rule.appendChild(el("code", "formula", o.formula));
    rule.appendChild(el("p", "gnote",
      "G is the gradient arriving at the output; each input gets G times its local derivative."));
    rule.appendChild(inputsLine(s.op));
    card.appendChild(rule);
    card.appendChild(el("h3", null, "Gradient arriving: G = d " + T[D.output].label + " / d" + paren(out.label)));
    card.appendChild(val(s.grad, "arrive", {op: s.op}));
    if (out.contributions.length > 1 || out.summed) accumulation(o.out, card);
    card.appendChild(el("h3", null, "Gradient sent to each input"));
    s.sends.forEach((send) => {
      const box = el("div", "send");
      const who = send.to === null ? "a constant" : tname(send.to);
      box.appendChild(el("div", "to", "\u2190 input " + send.pos + ": " + who));
      if (send.grad) {
        box.appendChild(val(send.grad, "send", {to: send.to, pos: send.pos}));
        const n = T[send.to].contributions.length;
        const to = T[send.to].label;
        const note = n > 1 ? "contribution " + send.nth + " of " + n + " to " + to + "'s gradient"
          : T[send.to].op === null && !T[send.to].summed ? "its only contribution: this is " + to + ".grad" : "";
        if (note) box.appendChild(el("p", "nth", note));
      } else {
        box.classList.add("none");
        box.appendChild(el("p", "why", send.why));
      }
      card.appendChild(box);
    });
    const seen = new Set();
    s.sends.forEach((send) => {
      if (send.grad && !seen.has(send.to) && (T[send.to].contributions.length > 1 || T[send.to].summed)) {
        seen.add(send.to);
        accumulation(send.to, card);
      }
    });
  }
  function doneCard(card) {
    head(card, "Done: every leaf's .grad", "exactly what the engine computed");
    const leaves = T.map((t, i) => i).filter((i) => T[i].op === null && T[i].grad);
    if (!leaves.length) card.appendChild(el("p", null, "No leaf requires grad, so no .grad was filled."));
    leaves.forEach((i) => {
      const box = el("div", "leaf");
      const n = T[i].contributions.length;
      const made = (n > 1 ? "the sum of " + n + " contributions" : "") + (T[i].summed ? (n > 1 ? ", " : "") +
        "changed by a hook" : "");
      box.appendChild(el("div", "to", T[i].label + ".grad" + (made ? "  (" + made + ")" : "")));
      box.appendChild(val(T[i].grad, "final", {to: i}));
      card.appendChild(box);
    });
    card.appendChild(el("p", "hint",
      "Press F to watch the forward pass that made these values, or Home to start again."));
  }
  function forwardCard(card) {
    if (step === 0) {
      head(card, "Forward: the leaves", "values that no op made");
      T.forEach((t, i) => {
        if (t.op !== null) return;
        const box = el("div", "leaf");
        box.appendChild(el("div", "to", tname(i)));
        box.appendChild(val(t.value, "value", {to: i}));
        card.appendChild(box);
      });
      card.appendChild(el("p", "hint", "Press \u2192 to run the " + O.length + " ops, each after its inputs exist."));
      return;
    }
    const o = O[step - 1];
    card.dataset.op = step - 1;
    head(card, o.label, "computes " + tname(o.out));
    o.inputs.forEach((inp, pos) => {
      const box = el("div", "send");
      const who = inp.tensor === undefined ? "a constant" : tname(inp.tensor);
      box.appendChild(el("div", "to", "\u2192 input " + pos + ": " + who));
      box.appendChild(val(inp.tensor === undefined ? inp.const : T[inp.tensor].value, "input"));
      card.appendChild(box);
    });
    card.appendChild(el("h3", null, "Output " + T[o.out].label));
    card.appendChild(val(T[o.out].value, "output", {to: o.out}));
  }

  // ---- state -------------------------------------------------------------------------------------------
  function render() {
    document.body.dataset.mode = mode;
    document.body.dataset.step = step;
    $("mode-backward").classList.toggle("on", mode === "backward");
    $("mode-forward").classList.toggle("on", mode === "forward");
    const n = last();
    $("slider").max = n;
    $("slider").value = step;
    const label = mode === "backward"
      ? (step === 0 ? "seed" : step > S.length ? "done" : "step " + step + " of " + S.length)
      : (step === 0 ? "leaves" : "op " + step + " of " + O.length);
    $("counter").textContent = label;
    const card = $("card");
    card.replaceChildren();
    delete card.dataset.op;
    card.dataset.mode = mode;
    (mode === "backward" ? backwardCard : forwardCard)(card);
    drawPicture();
  }
  function go(k) { step = Math.max(0, Math.min(last(), k)); render(); }
  function play() {
    if (timer) { clearInterval(timer); timer = null; $("play").textContent = "\u25B6 play"; return; }
    if (step >= last()) step = -1;
    $("play").textContent = "\u275A\u275A pause";
    timer = setInterval(() => { if (step >= last()) play(); else go(step + 1); }, 1400);
    go(step + 1);
  }
  function setMode(m) { if (timer) play(); mode = m; go(0); }

  $("first").onclick = () => go(0);
  $("prev").onclick = () => go(step - 1);
  $("next").onclick = () => go(step + 1);
  $("last").onclick = () => go(last());
  $("play").onclick = play;
  $("slider").oninput = (e) => go(Number(e.target.value));
  $("mode-backward").onclick = () => setMode("backward");
  $("mode-forward").onclick = () => setMode("forward");
  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const keys = {ArrowRight: () => go(step + 1), ArrowLeft: () => go(step - 1), Home: () => go(0),
      End: () => go(last()), " ": play, f: () => setMode(mode === "backward" ? "forward" : "backward")};
    const f = keys[e.key.length === 1 ? e.key.toLowerCase() : e.key];
    if (f) { e.preventDefault(); f(); }
  });
  render();
})();
