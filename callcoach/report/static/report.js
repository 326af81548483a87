/* callcoach report: filters, aggregates, charts and exports over the embedded data blob.
 * The aggregates mirror callcoach/report/data.py (build_report / filter_input): keep them in step.
 * Data is untrusted (transcripts): text goes in with textContent / createTextNode, never through an HTML parser. */
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var NO_REASON = "без причины";
  var PALETTE = ["#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899",
    "#84cc16", "#f97316", "#64748b", "#14b8a6", "#a855f7"];
  var SENT_COLORS = { positive: "#10b981", neutral: "#94a3b8", negative: "#ef4444" };
  var DIRECTION = { incoming: "Входящий", outgoing: "Исходящий" };
  var STATUS = { analysed: "Проанализирован", skipped: "Пропущен", failed: "Ошибка" };
  var SPEAKER = { manager: "Менеджер", client: "Клиент", unknown: "Собеседник" };
  var charts = {};
  var shownCall = null;

  // --- DOM helpers (text only) -------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") node.textContent = attrs[k];
        else if (k === "class") node.className = attrs[k];
        else node.setAttribute(k, attrs[k]);
      });
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    });
    return node;
  }
  function $(id) { return document.getElementById(id); }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function setText(id, value) { var n = $(id); if (n) n.textContent = value; }
  function safeUrl(url) {
    // only http(s) and relative links: a javascript: URL from data must never become a link
    return typeof url === "string" && /^(https?:\/\/|\/(?!\/)|calls\/)/i.test(url) ? url : null;
  }
  function pct(v) { return v === null || v === undefined ? "—" : Math.round(v * 100) + "%"; }
  function signed(v) { return v === null || v === undefined ? "—" : (v > 0 ? "+" : "") + v.toFixed(2); }
  function dur(s) {
    s = Math.round(s || 0);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return (h ? h + " ч " : "") + (h || m ? m + " мин " : "") + sec + " с";
  }
  function clock(s) {
    s = Math.floor(s || 0);
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }
  function catName(code) { return DATA.category_names[code] || code; }
  function topicName(t) { return DATA.topic_names[t] || t; }
  function sentName(s) { return DATA.sentiment_names[s] || s; }
  function cmp(a, b) { return a < b ? -1 : a > b ? 1 : 0; }

  // --- filters ------------------------------------------------------------------------------
  function currentFilters() {
    return {
      manager: $("f-manager").value || null,
      category: $("f-category").value || null,
      from: $("f-from").value || null,
      to: $("f-to").value || null
    };
  }
  function applyFilters(rows, f) {
    var out = [];
    rows.forEach(function (r) {
      if (f.manager && r.manager_key !== f.manager) return;
      if ((f.from || f.to) && !r.date) return;
      if (f.from && r.date < f.from) return;
      if (f.to && r.date > f.to) return;
      if (f.category) {
        if (r.status !== "analysed") return;
        var objs = r.objections.filter(function (o) { return o.category === f.category; });
        if (!objs.length) return;
        r = Object.assign({}, r, { objections: objs });
      }
      out.push(r);
    });
    return out;
  }

  // --- aggregates (mirror of build_report) ----------------------------------------------------
  function compute(rows, f) {
    var t = { calls: rows.length, incoming: 0, outgoing: 0, analysed: 0, skipped: 0, failed: 0,
      skipped_reasons: {}, failed_reasons: {}, total_duration: 0, objections: 0, handled: 0,
      handled_share: null, calls_with_objections: 0 };
    var managers = {}, order = [], talk = {}, topics = {}, topicOrder = [];
    var sentiment = { positive: 0, neutral: 0, negative: 0 };
    var cats = {}, catOrder = [], perDay = {}, candidates = [];
    rows.forEach(function (r) {
      if (r.direction === "incoming") t.incoming++;
      else if (r.direction === "outgoing") t.outgoing++;
      var m = managers[r.manager_key];
      if (!m) {
        m = managers[r.manager_key] = { key: r.manager_key, name: r.manager, calls: 0, analysed: 0,
          talk_ratio: null, objections: 0, handled: 0, handled_share: null, positive: 0, neutral: 0,
          negative: 0, sentiment_index: null };
        order.push(r.manager_key); talk[r.manager_key] = [];
      }
      m.calls++;
      if (r.status === "skipped") { t.skipped_reasons[r.reason || NO_REASON] = (t.skipped_reasons[r.reason || NO_REASON] || 0) + 1; return; }
      if (r.status !== "analysed") { t.failed_reasons[r.reason || NO_REASON] = (t.failed_reasons[r.reason || NO_REASON] || 0) + 1; return; }
      t.analysed++; t.total_duration += r.duration; m.analysed++;
      talk[r.manager_key].push(r.talk_ratio || 0);
      sentiment[r.sentiment]++; m[r.sentiment]++;
      if (!(r.topic in topics)) { topics[r.topic] = 0; topicOrder.push(r.topic); }
      topics[r.topic]++;
      if (r.objections.length) t.calls_with_objections++;
      r.objections.forEach(function (o) {
        t.objections++; m.objections++;
        var c = cats[o.category];
        if (!c) {
          c = cats[o.category] = { code: o.category, name: catName(o.category), count: 0, calls: {}, handled: 0,
            handled_share: null, recommendation: "", quotes: [] };
          catOrder.push(o.category);
        }
        c.count++; c.calls[r.id] = true;
        if (o.handled) { t.handled++; m.handled++; c.handled++; }
        if (!c.recommendation) c.recommendation = DATA.recommendations[o.category] || o.recommendation || "";
        c.quotes.push({ call_id: r.id, quote: o.quote, confidence: o.confidence, handled: o.handled,
          manager_reply: o.manager_reply });
        if (r.date) {
          perDay[r.date] = perDay[r.date] || {};
          perDay[r.date][o.category] = (perDay[r.date][o.category] || 0) + 1;
        }
      });
      r.candidates.forEach(function (q) { candidates.push({ call_id: r.id, quote: q }); });
    });
    function sum(o) { return Object.keys(o).reduce(function (a, k) { return a + o[k]; }, 0); }
    function sortedCounts(o) {
      var keys = Object.keys(o); var res = {};
      keys.map(function (k, i) { return [k, o[k], i]; })
        .sort(function (a, b) { return b[1] - a[1] || a[2] - b[2]; })
        .forEach(function (e) { res[e[0]] = e[1]; });
      return res;
    }
    t.skipped = sum(t.skipped_reasons); t.failed = sum(t.failed_reasons);
    t.skipped_reasons = sortedCounts(t.skipped_reasons); t.failed_reasons = sortedCounts(t.failed_reasons);
    t.handled_share = t.objections ? t.handled / t.objections : null;
    var mrows = order.map(function (k) {
      var m = managers[k];
      if (talk[k].length) m.talk_ratio = talk[k].reduce(function (a, b) { return a + b; }, 0) / talk[k].length;
      m.handled_share = m.objections ? m.handled / m.objections : null;
      if (m.analysed) m.sentiment_index = (m.positive - m.negative) / m.analysed;
      return m;
    }).sort(function (a, b) { return b.calls - a.calls || cmp(a.name, b.name); });
    var crows = catOrder.map(function (k) {
      var c = cats[k];
      c.calls = Object.keys(c.calls).length;
      c.handled_share = c.count ? c.handled / c.count : null;
      c.top_quotes = c.quotes.slice().sort(function (a, b) { return b.confidence - a.confidence; }).slice(0, 3);
      delete c.quotes;
      return c;
    }).sort(function (a, b) { return b.count - a.count || cmp(a.name, b.name); });
    var topicCounts = {};
    topicOrder.map(function (k, i) { return [k, topics[k], i]; })
      .sort(function (a, b) { return b[1] - a[1] || a[2] - b[2]; })
      .forEach(function (e) { topicCounts[e[0]] = e[1]; });
    return { totals: t, managers: mrows, topics: topicCounts, sentiment: sentiment, categories: crows,
      trend: trend(rows, perDay, crows, f), candidates: candidates };
  }

  function trend(rows, perDay, crows, f) {
    var dates = rows.filter(function (r) { return r.date; }).map(function (r) { return r.date; }).sort();
    var first = (f && f.from) || DATA.period_from || dates[0];
    var last = (f && f.to) || DATA.period_to || dates[dates.length - 1];
    var days = [];
    if (first && last && first <= last) {
      var d = new Date(first + "T00:00:00Z"), end = new Date(last + "T00:00:00Z");
      while (d <= end && days.length <= 366) { days.push(d.toISOString().slice(0, 10)); d.setUTCDate(d.getUTCDate() + 1); }
    }
    var series = {};
    crows.forEach(function (c) { series[c.code] = days.map(function (day) { return (perDay[day] || {})[c.code] || 0; }); });
    return { days: days, series: series };
  }

  // --- rendering ----------------------------------------------------------------------------
  function renderTotals(agg) {
    var t = agg.totals;
    setText("kpi-calls", t.calls);
    setText("kpi-incoming", t.incoming);
    setText("kpi-outgoing", t.outgoing);
    setText("kpi-analysed", t.analysed);
    setText("kpi-skipped", t.skipped);
    setText("kpi-failed", t.failed);
    setText("kpi-objections", t.objections);
    setText("kpi-handled-share", pct(t.handled_share));
    setText("kpi-duration", dur(t.total_duration));
    setText("kpi-with-objections", t.calls_with_objections);
    var reasons = clear($("skip-reasons"));
    [["Пропущено", t.skipped_reasons], ["Ошибки", t.failed_reasons]].forEach(function (pair) {
      Object.keys(pair[1]).forEach(function (r) {
        reasons.appendChild(el("li", null, [el("span", { class: "muted", text: pair[0] + ": " }), r + " — ",
          el("b", { text: String(pair[1][r]) })]));
      });
    });
    if (!reasons.firstChild) reasons.appendChild(el("li", { class: "muted", text: "Пропущенных звонков нет" }));
  }

  function bar(share, cls) {
    var w = share === null || share === undefined ? 0 : Math.max(0, Math.min(1, share));
    return el("span", { class: "meter " + (cls || "") }, [el("span", { style: "width:" + (w * 100).toFixed(0) + "%" })]);
  }

  function renderManagers(agg) {
    var body = clear($("managers-body"));
    agg.managers.forEach(function (m) {
      var sentCls = m.sentiment_index === null ? "" : m.sentiment_index > 0.15 ? "pos" : m.sentiment_index < -0.15 ? "neg" : "neu";
      body.appendChild(el("tr", { "data-key": m.key }, [
        el("td", { class: "name", text: m.name }),
        el("td", { class: "num", "data-field": "calls", text: String(m.calls) }),
        el("td", { class: "num", "data-field": "analysed", text: String(m.analysed) }),
        el("td", { class: "num", "data-field": "talk_ratio" }, [pct(m.talk_ratio), " ", bar(m.talk_ratio)]),
        el("td", { class: "num", "data-field": "objections", text: String(m.objections) }),
        el("td", { class: "num", "data-field": "handled_share" }, [pct(m.handled_share), " ", bar(m.handled_share, "green")]),
        el("td", { class: "num", "data-field": "sentiment" }, [
          el("span", { class: "pill " + sentCls, text: signed(m.sentiment_index) }), " ",
          el("span", { class: "muted small", text: m.positive + " / " + m.neutral + " / " + m.negative })])
      ]));
    });
    if (!agg.managers.length) body.appendChild(emptyRow(7));
  }

  function emptyRow(n) { return el("tr", null, [el("td", { colspan: String(n), class: "muted center", text: "Нет данных" })]); }

  function renderCategories(agg) {
    var body = clear($("categories-body"));
    agg.categories.forEach(function (c) {
      body.appendChild(el("tr", { "data-code": c.code }, [
        el("td", { class: "name" }, [el("span", { class: "dot", style: "background:" + colorOf(c.code) }), c.name]),
        el("td", { class: "num", "data-field": "count", text: String(c.count) }),
        el("td", { class: "num", "data-field": "calls", text: String(c.calls) }),
        el("td", { class: "num", "data-field": "handled_share" }, [pct(c.handled_share), " ", bar(c.handled_share, "green")])
      ]));
    });
    if (!agg.categories.length) body.appendChild(emptyRow(4));
    var quotes = clear($("quotes"));
    agg.categories.forEach(function (c) {
      var card = el("div", { class: "quote-card", "data-code": c.code }, [
        el("h4", null, [el("span", { class: "dot", style: "background:" + colorOf(c.code) }), c.name,
          el("span", { class: "muted small", text: " · " + c.count })])
      ]);
      c.top_quotes.forEach(function (q) {
        card.appendChild(el("blockquote", null, [
          "«" + q.quote + "»",
          el("div", { class: "small muted" }, [
            el("a", { href: "#", class: "call-ref", "data-call": q.call_id, text: q.call_id }),
            q.handled ? el("span", { class: "pill pos", text: "отработано" }) : el("span", { class: "pill neg", text: "не отработано" })
          ])
        ]));
      });
      if (c.recommendation) card.appendChild(el("p", { class: "rec" }, [el("b", { text: "Рекомендация: " }), c.recommendation]));
      quotes.appendChild(card);
    });
    if (!agg.categories.length) quotes.appendChild(el("p", { class: "muted", text: "Возражений не найдено" }));
  }

  function renderCandidates(agg) {
    var list = clear($("candidates"));
    agg.candidates.slice(0, 30).forEach(function (c) {
      list.appendChild(el("li", null, ["«" + c.quote + "» ",
        el("a", { href: "#", class: "call-ref small", "data-call": c.call_id, text: c.call_id })]));
    });
    if (!agg.candidates.length) list.appendChild(el("li", { class: "muted", text: "Нет возражений вне известных категорий" }));
  }

  function renderCalls(rows) {
    var body = clear($("calls-body"));
    rows.forEach(function (r) {
      var link = safeUrl(r.page_url);
      var actions = el("td", { class: "actions" });
      if (r.segments) actions.appendChild(el("button", { type: "button", class: "btn-link", "data-call": r.id, text: "Расшифровка" }));
      if (link) actions.appendChild(el("a", { href: link, target: "_blank", rel: "noopener", text: "Страница" }));
      var status = el("span", { class: "pill " + (r.status === "analysed" ? "neu" : r.status === "skipped" ? "warn" : "neg"),
        text: STATUS[r.status] || r.status });
      body.appendChild(el("tr", { "data-call": r.id }, [
        el("td", { class: "name", text: r.id }),
        el("td", { text: r.started_at ? r.started_at.slice(0, 16).replace("T", " ") : "—" }),
        el("td", { text: r.manager }),
        el("td", { text: DIRECTION[r.direction] || "—" }),
        el("td", { class: "num", text: dur(r.duration) }),
        el("td", null, [status, r.reason ? el("div", { class: "small muted", text: r.reason }) : null]),
        el("td", { text: r.topic ? topicName(r.topic) : "—" }),
        el("td", null, [r.sentiment ? el("span", { class: "pill " + { positive: "pos", neutral: "neu", negative: "neg" }[r.sentiment], text: sentName(r.sentiment) }) : "—"]),
        el("td", { class: "num", text: String(r.objections.length) }),
        actions
      ]));
    });
    if (!rows.length) body.appendChild(emptyRow(10));
    setText("shown-count", rows.length);
  }

  function rowById(id) {
    for (var i = 0; i < DATA.calls.length; i++) if (DATA.calls[i].id === id) return DATA.calls[i];
    return null;
  }

  function transcriptNode(r, category) {
    var objs = r.objections.filter(function (o) { return !category || o.category === category; });
    var box = el("div", { class: "transcript", "data-call": r.id });
    var head = el("div", { class: "t-head" }, [el("b", { text: r.id }), el("span", { class: "muted", text: " · " + r.manager + " · " + dur(r.duration) })]);
    var link = safeUrl(r.page_url);
    if (link) head.appendChild(el("a", { href: link, target: "_blank", rel: "noopener", class: "small", text: " открыть страницу звонка" }));
    box.appendChild(head);
    if (r.summary) box.appendChild(el("p", { class: "summary", text: r.summary }));
    (r.segments || []).forEach(function (s) {
      var hits = objs.filter(function (o) {
        return (o.start >= s.start - 0.05 && o.start <= s.end + 0.05) || (o.quote && s.text.indexOf(o.quote) >= 0);
      });
      var line = el("div", { class: "seg " + s.speaker + (hits.length ? " objection" : "") });
      line.appendChild(el("span", { class: "who", text: (SPEAKER[s.speaker] || s.speaker) + " " + clock(s.start) }));
      var text = el("span", { class: "text" });
      var quote = hits.length ? hits[0].quote : "";
      var at = quote ? s.text.indexOf(quote) : -1;
      if (at >= 0) {
        text.appendChild(document.createTextNode(s.text.slice(0, at)));
        text.appendChild(el("mark", { text: quote }));
        text.appendChild(document.createTextNode(s.text.slice(at + quote.length)));
      } else {
        text.appendChild(hits.length ? el("mark", { text: s.text }) : document.createTextNode(s.text));
      }
      line.appendChild(text);
      hits.forEach(function (o) {
        line.appendChild(el("span", { class: "badge", style: "border-color:" + colorOf(o.category) + ";color:" + colorOf(o.category), text: o.name || catName(o.category) }));
        if (o.recommendation) line.appendChild(el("div", { class: "rec small", text: "Совет: " + o.recommendation }));
      });
      box.appendChild(line);
    });
    if (!r.segments) box.appendChild(el("p", { class: "muted", text: "Расшифровка не встроена в отчёт" }));
    return box;
  }

  function renderTranscripts(rows, f) {
    var box = clear($("transcripts"));
    var picked = [];
    if (shownCall) {
      var r = rowById(shownCall);
      if (r) picked.push(r);
    } else {
      picked = rows.filter(function (r) { return r.segments && r.objections.length; })
        .slice().sort(function (a, b) { return b.objections.length - a.objections.length; }).slice(0, 3);
    }
    picked.forEach(function (r) { box.appendChild(transcriptNode(r, f.category)); });
    if (!picked.length) box.appendChild(el("p", { class: "muted", text: "Нет расшифровок с возражениями" }));
    $("transcripts-all").style.display = shownCall ? "" : "none";
  }

  // --- charts ---------------------------------------------------------------------------------
  var colorIndex = {};
  function colorOf(code) {
    if (!(code in colorIndex)) colorIndex[code] = PALETTE[Object.keys(colorIndex).length % PALETTE.length];
    return colorIndex[code];
  }
  function chart(id, config) {
    if (typeof Chart === "undefined") return;
    if (charts[id]) { charts[id].data = config.data; charts[id].update(); return; }
    config.options = Object.assign({ animation: false, responsive: true, maintainAspectRatio: false,
      plugins: { legend: { display: config.type !== "bar" } } }, config.options || {});
    charts[id] = new Chart($(id), config);
  }
  function renderCharts(agg) {
    chart("chart-categories", { type: "bar", data: {
      labels: agg.categories.map(function (c) { return c.name; }),
      datasets: [
        { label: "Всего", data: agg.categories.map(function (c) { return c.count; }), backgroundColor: agg.categories.map(function (c) { return colorOf(c.code); }) },
        { label: "Отработано", data: agg.categories.map(function (c) { return c.handled; }), backgroundColor: "rgba(16,185,129,.35)" }
      ] }, options: { indexAxis: "y", plugins: { legend: { display: true, position: "bottom" } }, scales: { x: { ticks: { precision: 0 } } } } });
    var sk = Object.keys(agg.sentiment);
    chart("chart-sentiment", { type: "doughnut", data: {
      labels: sk.map(sentName), datasets: [{ data: sk.map(function (k) { return agg.sentiment[k]; }), backgroundColor: sk.map(function (k) { return SENT_COLORS[k]; }) }] },
      options: { plugins: { legend: { position: "bottom" } }, cutout: "62%" } });
    var tk = Object.keys(agg.topics);
    chart("chart-topics", { type: "bar", data: {
      labels: tk.map(topicName), datasets: [{ label: "Звонков", data: tk.map(function (k) { return agg.topics[k]; }), backgroundColor: "#6366f1", borderRadius: 4 }] },
      options: { scales: { y: { ticks: { precision: 0 } } } } });
    chart("chart-trend", { type: "line", data: {
      labels: agg.trend.days,
      datasets: agg.categories.map(function (c) {
        return { label: c.name, data: agg.trend.series[c.code], borderColor: colorOf(c.code), backgroundColor: colorOf(c.code), cubicInterpolationMode: "monotone", pointRadius: 2 };
      }) }, options: { plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } } });
  }

  // --- exports --------------------------------------------------------------------------------
  var CSV_HEADER = ["id", "дата", "менеджер", "направление", "статус", "причина", "длительность_с",
    "доля_речи_менеджера", "тональность", "тема", "возражений", "отработано", "категории"];
  function csvCell(v) {
    if (v === null || v === undefined) return "";
    var s = String(v);
    if (typeof v === "string" && /^[=+\-@\t\r]/.test(s)) s = "'" + s;  // no formulas in spreadsheets
    return /[",\n\r;]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function csvRows(rows) {
    return rows.map(function (r) {
      var cats = [];
      r.objections.forEach(function (o) { if (cats.indexOf(o.category) < 0) cats.push(o.category); });
      return [r.id, r.started_at, r.manager, r.direction, r.status, r.reason, r.duration,
        r.talk_ratio, r.sentiment, r.topic, r.objections.length,
        r.objections.filter(function (o) { return o.handled; }).length, cats.join(" ")];
    });
  }
  function download(name, type, text) {
    var blob = new Blob([text], { type: type });
    var a = el("a", { href: URL.createObjectURL(blob), download: name });
    document.body.appendChild(a); a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }
  var state = { rows: [], agg: null, filters: {} };
  function exportCsv() {
    var lines = [CSV_HEADER].concat(csvRows(state.rows)).map(function (r) { return r.map(csvCell).join(","); });
    download("callcoach-report.csv", "text/csv;charset=utf-8", "\ufeff" + lines.join("\r\n") + "\r\n");
  }
  function exportJson() {
    var out = Object.assign({ title: DATA.title, generated_at: DATA.generated_at, filters: state.filters }, state.agg);
    out.calls = state.rows.map(function (r) { var c = Object.assign({}, r); delete c.segments; return c; });
    download("callcoach-report.json", "application/json", JSON.stringify(out, null, 2));
  }
  window.callcoachReport = { compute: compute, applyFilters: applyFilters, csvRows: csvRows, state: state };

  // --- wiring ---------------------------------------------------------------------------------
  function update() {
    var f = currentFilters();
    var rows = applyFilters(DATA.calls, f);
    var agg = compute(rows, f);
    state.rows = rows; state.agg = agg; state.filters = f;
    renderTotals(agg); renderManagers(agg); renderCategories(agg); renderCandidates(agg);
    renderCalls(rows); renderTranscripts(rows, f); renderCharts(agg);
    $("filter-state").textContent = f.manager || f.category || f.from || f.to ? "Фильтр применён" : "";
  }
  function fillSelect(id, options) {
    var s = $(id);
    options.forEach(function (o) { s.appendChild(el("option", { value: o[0], text: o[1] })); });
  }
  function init() {
    var seen = {}, managers = [];
    DATA.calls.forEach(function (r) { if (!seen[r.manager_key]) { seen[r.manager_key] = 1; managers.push([r.manager_key, r.manager]); } });
    managers.sort(function (a, b) { return cmp(a[1], b[1]); });
    fillSelect("f-manager", managers);
    var cats = Object.keys(DATA.category_names).map(function (k) { return [k, DATA.category_names[k]]; });
    cats.sort(function (a, b) { return cmp(a[1], b[1]); });
    fillSelect("f-category", cats);
    ["f-manager", "f-category", "f-from", "f-to"].forEach(function (id) { $(id).addEventListener("change", update); });
    $("f-reset").addEventListener("click", function () {
      ["f-manager", "f-category", "f-from", "f-to"].forEach(function (id) { $(id).value = ""; });
      shownCall = null; update();
    });
    $("export-csv").addEventListener("click", exportCsv);
    $("export-json").addEventListener("click", exportJson);
    document.addEventListener("click", function (e) {
      var t = e.target.closest ? e.target.closest("[data-call].btn-link, a.call-ref") : null;
      if (!t) return;
      e.preventDefault();
      shownCall = t.getAttribute("data-call");
      renderTranscripts(state.rows, state.filters);
      $("transcripts-section").scrollIntoView({ behavior: "auto", block: "start" });
    });
    $("transcripts-all").addEventListener("click", function () { shownCall = null; renderTranscripts(state.rows, state.filters); });
    update();
    document.body.setAttribute("data-ready", "1");
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
