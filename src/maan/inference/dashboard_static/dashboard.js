// maan live dashboard: draws the Bokeh figures the server built, fills them from
// /api/history, then follows /api/events (server-sent events) without reloading.
(function () {
  "use strict";
  const settings = JSON.parse(document.getElementById("maan-settings").textContent);
  const figures = JSON.parse(document.getElementById("maan-figures").textContent);
  const query = settings.token ? "?token=" + encodeURIComponent(settings.token) : "";
  const targets = settings.targets;
  const words = settings.flag_words;
  // render latencies (s) from each record's prediction time to its drawing (benchmarks/dashboard_latency.py)
  const latencies = (window.maanLatencies = []);
  // and from the server's sending of each record's event to its drawing
  const transport = (window.maanTransport = []);
  let doc = null;
  let lastTime = -Infinity;
  let state = "waiting";
  let lastFlags = [];

  const byId = (id) => document.getElementById(id);
  const num = (v) => (v === null || v === undefined ? NaN : v);
  // Bokeh's datetime axis shows UTC: shift to the browser's local time
  const local = (t) => t * 1000 - new Date(t * 1000).getTimezoneOffset() * 60000;
  const source = (name) => doc.get_model_by_name(name);
  const rollover = () => Math.ceil(settings.history_seconds / 0.05);

  function showStatus(next, reason) {
    state = next;
    const el = byId("status");
    el.textContent = next;
    el.className = "value state-" + next.split(" ")[0];
    byId("status-reason").textContent = reason || "";
    showFlags(lastFlags);
  }

  function showFlags(flags) {
    lastFlags = flags;
    const items = flags.map((f) => words[f] || f);
    if (state === "reconnecting") items.unshift(words.reconnecting);
    const list = byId("flags");
    list.replaceChildren(...(items.length ? items : ["all signals usable"]).map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }));
  }

  function modalityWords(kind) {
    return { "ecg+eeg": "ECG + EEG", ecg: "ECG only", eeg: "EEG only" }[kind] || "none (not predicted)";
  }

  function appendSeries(records) {
    if (!records.length) return;
    const prob = { x: [] };
    targets.forEach((t) => (prob[t] = []));
    const hr = { x: [], bpm: [] };
    const used = { x: [], kind: [] };
    records.forEach((r) => {
      const x = local(r.time);
      prob.x.push(x);
      targets.forEach((t) => prob[t].push(num(r["prob_" + t])));
      hr.x.push(x);
      hr.bpm.push(num(r.heart_rate_bpm));
      (r.modalities || "").split("+").filter(Boolean).forEach((k) => {
        used.x.push(x);
        used.kind.push(k.toUpperCase());
      });
    });
    source("prob").stream(prob, rollover());
    source("hr").stream(hr, rollover());
    if (used.x.length) source("used").stream(used, 2 * rollover());
  }

  function showRecord(r) {
    targets.forEach((t) => {
      const p = r["prob_" + t];
      byId("prob-" + t).textContent = p === null ? "–" : p.toFixed(3);
      byId("pred-" + t).textContent = p === null ? "not predicted" : (r["pred_" + t] ? "high" : "low") + " " + t;
    });
    byId("hr").textContent = r.heart_rate_bpm === null ? "–" : r.heart_rate_bpm.toFixed(1);
    byId("modalities").textContent = modalityWords(r.modalities);
    byId("updated").textContent = "window ending " + new Date(r.time * 1000).toLocaleTimeString();
    document.body.dataset.recordTime = String(r.time);
    showFlags(r.flags || []);
  }

  function showDetails(d) {
    if (!d) return;
    if (d.ecg) {
      source("ecg").data = { t: d.ecg.t, mv: d.ecg.mv.map(num) };
      source("beats").data = { t: d.ecg.beat_t, mv: d.ecg.beat_mv.map(num) };
    }
    if (d.bands) source("bands").data = { band: d.bands.band, power: d.bands.power.map(num) };
    const att = source("attention");
    const weights = att.data.x.map(([t, k]) => {
      const w = d.attention && d.attention[t];
      return w ? num(w[k === "ECG" ? 0 : 1]) : NaN;
    });
    att.data = { x: att.data.x, weight: weights };
    byId("attention-note").textContent = d.error ? "Window details unavailable: " + d.error : d.attention ? "" :
      "Fusion attention: none for this window (not predicted, or a model without fusion attention).";
  }

  function onPrediction(message) {
    const r = message.record;
    if (r.time > lastTime) {
      appendSeries([r]);
      lastTime = r.time;
    }
    showRecord(r);
    showDetails(message.details);
    if (state !== "connected") showStatus("connected", "");
    requestAnimationFrame(() => {
      const now = Date.now() / 1000;
      latencies.push(now - r.time);
      if (message.published) transport.push(now - message.published);
      if (latencies.length > 10000) latencies.shift();
      if (transport.length > 10000) transport.shift();
    });
  }

  function follow() {
    const events = new EventSource("/api/events" + query);
    events.addEventListener("prediction", (e) => onPrediction(JSON.parse(e.data)));
    events.addEventListener("status", (e) => {
      const s = JSON.parse(e.data);
      showStatus(s.state, s.reason);
    });
    events.onerror = () => {
      if (events.readyState !== EventSource.OPEN) showStatus("unreachable", "dashboard server not answering; retrying");
    };
  }

  Bokeh.embed.embed_item(figures, "plots").then(() => {
    doc = Bokeh.documents[Bokeh.documents.length - 1];
    const sep = query ? "&" : "?";
    return fetch("/api/history" + query + sep + "seconds=" + settings.history_seconds)
      .then((response) => (response.ok ? response.json() : []))
      .then((records) => {
        appendSeries(records);
        if (records.length) lastTime = records[records.length - 1].time;
      });
  }).finally(follow);
})();
