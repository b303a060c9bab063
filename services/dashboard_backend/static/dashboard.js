/* wsrig dashboard: a live view of the backend's /ws/stream. Plain JS, no dependencies.
 *
 * Messages only update the model below and set dirty flags; the DOM is written in one
 * requestAnimationFrame callback when something changed, so the page keeps up with a
 * few thousand messages per second. window.wsrigDashboard exposes the counters; the
 * data-* attributes carry the raw JSON values as received (String(value)), so a test
 * can compare them with /api/state (tests/unit/test_dashboard_page.py lists the contract).
 */
(function () {
  "use strict";

  var BACKOFF_FIRST_MS = 250;
  var BACKOFF_MAX_MS = 5000;
  var JITTER = 0.2; // a retry waits between 80 % and 100 % of the current backoff
  var MAX_TRADES = 50;

  // --- the public view (read by tests) ------------------------------------------------

  var pub = {
    frames: 0, // envelopes received
    snapshots: 0, // snapshot frames received
    renders: 0, // animation-frame renders done
    errors: 0, // error frames received
    gaps: 0, // gap envelopes received
    state: "connecting", // connecting | connected | reconnecting | resumed
    lastSeq: {}, // run_id -> highest seq received (or set from a non-resumed snapshot)
    connections: 0, // sockets opened (open event)
  };
  window.wsrigDashboard = pub;

  // --- the model ----------------------------------------------------------------------

  var prices = new Map(); // symbol -> {price, bid, ask}
  var positions = new Map(); // symbol -> position data
  var portfolio = null; // portfolio data or null
  var trades = []; // trade envelopes, newest first, at most MAX_TRADES
  var tradeIds = new Set(); // trade_ids in `trades`
  var lastRun = null; // run_id of the most recent envelope
  var snapRuns = {}; // runs of the latest snapshot: seqs whose effect it already holds
  var declared = 0; // seqs declared dropped by gap envelopes
  var lastError = null; // the latest error frame

  // --- the connection -----------------------------------------------------------------

  var ws = null;
  var backoff = BACKOFF_FIRST_MS;
  var retryDelay = 0; // ms, the wait before the pending retry
  var attempts = 0; // failed or closed connections since the last snapshot
  var sentResume = false; // this connection's subscribe carried a resume

  function streamUrl() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/stream";
  }

  function connect() {
    var sock;
    sentResume = false;
    try {
      sock = new WebSocket(streamUrl());
    } catch (e) {
      retry();
      return;
    }
    ws = sock;
    sock.onopen = function () {
      pub.connections++;
      var frame = { type: "subscribe", snapshot: true };
      if (lastRun !== null && pub.lastSeq[lastRun] !== undefined) {
        frame.resume = { run_id: lastRun, after_seq: pub.lastSeq[lastRun] };
        sentResume = true;
      }
      sock.send(JSON.stringify(frame));
      markHeader();
    };
    sock.onmessage = onMessage;
    // A failed or lost connection is normal here: the close event that follows retries.
    sock.onerror = function () {};
    sock.onclose = function () {
      if (ws !== sock) return;
      ws = null;
      retry();
    };
  }

  function retry() {
    attempts++;
    retryDelay = Math.round(backoff * (1 - JITTER * Math.random()));
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    setState("reconnecting");
    setTimeout(connect, retryDelay);
  }

  function setState(state) {
    pub.state = state;
    markHeader();
  }

  // --- messages -----------------------------------------------------------------------

  function onMessage(ev) {
    if (typeof ev.data !== "string") return;
    var msg;
    try {
      msg = JSON.parse(ev.data);
    } catch (e) {
      return;
    }
    if (msg === null || typeof msg !== "object") return;
    var type = msg.type;
    if (type === "snapshot") {
      onSnapshot(msg);
    } else if (type === "error") {
      pub.errors++;
      lastError = msg;
    } else if (typeof msg.run_id === "string" && typeof msg.seq === "number") {
      onEnvelope(msg);
    } else {
      return;
    }
    markHeader();
  }

  function onSnapshot(msg) {
    pub.snapshots++;
    var resumed = sentResume && msg.resumed === true;
    positions = new Map(Object.entries(isObject(msg.positions) ? msg.positions : {}));
    portfolio = isObject(msg.portfolio) ? msg.portfolio : null;
    trades = [];
    tradeIds = new Set();
    var recent = Array.isArray(msg.recent_trades) ? msg.recent_trades : [];
    for (var i = recent.length - 1; i >= 0 && trades.length < MAX_TRADES; i--) {
      var id = tradeId(recent[i]);
      if (id !== null && !tradeIds.has(id)) {
        trades.push(recent[i]);
        tradeIds.add(id);
      }
    }
    snapRuns = isObject(msg.runs) ? msg.runs : {};
    if (!resumed) {
      // The backend's view replaces ours (runs it does not list keep what we saw).
      Object.keys(snapRuns).forEach(function (run) {
        pub.lastSeq[run] = snapRuns[run];
      });
    }
    backoff = BACKOFF_FIRST_MS;
    attempts = 0;
    setState(resumed ? "resumed" : "connected");
    dirty.positionsAll = true;
    dirty.portfolio = true;
    dirty.trades = true;
    dirty.seq = true;
  }

  function onEnvelope(env) {
    pub.frames++;
    var run = env.run_id;
    var seq = env.seq;
    var seen = pub.lastSeq[run];
    if (seen === undefined || seq > seen) pub.lastSeq[run] = seq;
    lastRun = run;
    dirty.seq = true;
    // A replayed envelope (resume) at or below the snapshot's seq of its run: the
    // snapshot's positions, portfolio and trades already hold it.
    var covered = snapRuns[run] !== undefined && seq <= snapRuns[run];
    var data = isObject(env.data) ? env.data : {};
    switch (env.type) {
      case "market_data":
        if (typeof data.symbol === "string") {
          prices.set(data.symbol, { price: data.price, bid: data.bid, ask: data.ask });
          dirty.prices.add(data.symbol);
        }
        break;
      case "trade":
        addTrade(env, covered);
        break;
      case "position":
        if (!covered && typeof data.symbol === "string") {
          positions.set(data.symbol, data);
          dirty.positions.add(data.symbol);
        }
        break;
      case "portfolio":
        if (!covered) {
          portfolio = data;
          dirty.portfolio = true;
        }
        break;
      case "gap":
        pub.gaps++;
        if (typeof data.count === "number") declared += data.count;
        break;
      default:
        break;
    }
  }

  function addTrade(env, covered) {
    var id = tradeId(env);
    if (id === null || tradeIds.has(id)) return; // listed already (a replay of a snapshot trade)
    if (covered) {
      // Older than every trade the snapshot listed: last, if there is room.
      if (trades.length >= MAX_TRADES) return;
      trades.push(env);
    } else {
      trades.unshift(env);
      if (trades.length > MAX_TRADES) tradeIds.delete(tradeId(trades.pop()));
    }
    tradeIds.add(id);
    dirty.trades = true;
  }

  function tradeId(env) {
    var id = isObject(env) && isObject(env.data) ? env.data.trade_id : undefined;
    return typeof id === "string" ? id : null;
  }

  function isObject(v) {
    return v !== null && typeof v === "object" && !Array.isArray(v);
  }

  // --- rendering ----------------------------------------------------------------------

  var dirty = {
    header: true,
    seq: true,
    prices: new Set(),
    positions: new Set(),
    positionsAll: true,
    portfolio: true,
    trades: true,
  };
  var scheduled = false;

  function markHeader() {
    dirty.header = true;
    schedule();
  }

  function schedule() {
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(render);
    }
  }

  function $(id) {
    return document.getElementById(id);
  }

  var el = {
    state: $("conn-state"),
    seq: $("last-seq"),
    frames: $("stat-frames"),
    rate: $("stat-rate"),
    snapshots: $("stat-snapshots"),
    connections: $("stat-connections"),
    gaps: $("stat-gaps"),
    errors: $("stat-errors"),
    pricesBody: document.querySelector("#prices tbody"),
    pricesEmpty: $("prices-empty"),
    positionsBody: document.querySelector("#positions tbody"),
    positionsEmpty: $("positions-empty"),
    portfolio: $("portfolio"),
    pfEquity: $("pf-equity"),
    pfCash: $("pf-cash"),
    pfRealized: $("pf-realized"),
    pfUnrealized: $("pf-unrealized"),
    trades: $("trades"),
    tradesEmpty: $("trades-empty"),
  };

  var priceRows = new Map(); // symbol -> {tr, cells}
  var positionRows = new Map(); // symbol -> {tr, cells}
  var tradeItems = new Map(); // trade_id -> li
  var rate = 0;

  function render() {
    scheduled = false;
    pub.renders++;
    if (dirty.header) renderHeader();
    if (dirty.seq) renderSeq();
    if (dirty.prices.size) renderPrices();
    if (dirty.positionsAll || dirty.positions.size) renderPositions();
    if (dirty.portfolio) renderPortfolio();
    if (dirty.trades) renderTrades();
  }

  function renderHeader() {
    dirty.header = false;
    var state = pub.state;
    if (el.state.getAttribute("data-state") !== state) el.state.setAttribute("data-state", state);
    var text = state;
    if (state === "reconnecting") {
      text += " \u00b7 retry in " + (retryDelay / 1000).toFixed(2) + " s (attempt " + attempts + ")";
    }
    setText(el.state, text);
    setText(el.frames, count.format(pub.frames));
    setText(el.rate, count.format(rate));
    setText(el.snapshots, count.format(pub.snapshots));
    setText(el.connections, count.format(pub.connections));
    setText(el.gaps, count.format(pub.gaps));
    el.gaps.title = pub.gaps ? declared + " seqs declared dropped by the publisher" : "";
    setText(el.errors, count.format(pub.errors));
    el.errors.title = lastError ? String(lastError.code) + ": " + String(lastError.detail) : "";
    el.errors.classList.toggle("alert", pub.errors > 0);
  }

  function renderSeq() {
    dirty.seq = false;
    var seq = lastRun !== null ? pub.lastSeq[lastRun] : undefined;
    el.seq.setAttribute("data-run", lastRun !== null ? lastRun : "");
    el.seq.setAttribute("data-seq", raw(seq));
    if (lastRun === null) {
      setText(el.seq, "no envelope yet");
      return;
    }
    el.seq.title = lastRun;
    setText(el.seq, "run " + shortRun(lastRun) + " \u00b7 seq " + (seq === undefined ? "\u2013" : count.format(seq)));
  }

  function renderPrices() {
    dirty.prices.forEach(function (symbol) {
      var p = prices.get(symbol);
      var row = priceRows.get(symbol);
      if (!row) {
        row = makeRow(el.pricesBody, priceRows, symbol, 3);
      }
      setAttrs(row.tr, { "data-price": raw(p.price), "data-bid": raw(p.bid), "data-ask": raw(p.ask) });
      setText(row.cells[0], fmtPrice(p.price));
      setText(row.cells[1], fmtPrice(p.bid));
      setText(row.cells[2], fmtPrice(p.ask));
    });
    dirty.prices.clear();
    el.pricesEmpty.hidden = priceRows.size > 0;
  }

  function renderPositions() {
    var symbols;
    if (dirty.positionsAll) {
      positionRows.forEach(function (row, symbol) {
        if (!positions.has(symbol)) {
          row.tr.remove();
          positionRows.delete(symbol);
        }
      });
      symbols = Array.from(positions.keys());
    } else {
      symbols = Array.from(dirty.positions);
    }
    symbols.forEach(function (symbol) {
      var d = positions.get(symbol);
      var row = positionRows.get(symbol) || makeRow(el.positionsBody, positionRows, symbol, 5);
      setAttrs(row.tr, {
        "data-quantity": raw(d.quantity),
        "data-avg-price": raw(d.avg_price),
        "data-market-price": raw(d.market_price),
        "data-unrealized-pnl": raw(d.unrealized_pnl),
        "data-realized-pnl": raw(d.realized_pnl),
      });
      setText(row.cells[0], fmtQty(d.quantity));
      setText(row.cells[1], fmtPrice(d.avg_price));
      setText(row.cells[2], fmtPrice(d.market_price));
      setPnl(row.cells[3], d.unrealized_pnl);
      setPnl(row.cells[4], d.realized_pnl);
    });
    dirty.positionsAll = false;
    dirty.positions.clear();
    el.positionsEmpty.hidden = positionRows.size > 0;
  }

  function renderPortfolio() {
    dirty.portfolio = false;
    var p = portfolio || {};
    setAttrs(el.portfolio, {
      "data-cash": raw(p.cash),
      "data-equity": raw(p.equity),
      "data-realized-pnl": raw(p.realized_pnl),
      "data-unrealized-pnl": raw(p.unrealized_pnl),
    });
    setText(el.pfEquity, fmtMoney(p.equity));
    setText(el.pfCash, fmtMoney(p.cash));
    setPnl(el.pfRealized, p.realized_pnl);
    setPnl(el.pfUnrealized, p.unrealized_pnl);
  }

  function renderTrades() {
    dirty.trades = false;
    var keep = new Map();
    var list = el.trades;
    // Items already in place stay untouched: new trades are inserted, gone ones removed.
    var node = list.firstElementChild;
    trades.forEach(function (env) {
      var id = env.data.trade_id;
      var li = tradeItems.get(id) || makeTrade(env);
      keep.set(id, li);
      if (li === node) {
        node = node.nextElementSibling;
      } else {
        list.insertBefore(li, node);
      }
    });
    while (node) {
      var next = node.nextElementSibling;
      node.remove();
      node = next;
    }
    tradeItems = keep;
    el.tradesEmpty.hidden = trades.length > 0;
  }

  function makeTrade(env) {
    var d = env.data;
    var li = document.createElement("li");
    setAttrs(li, {
      "data-trade-id": d.trade_id,
      "data-seq": raw(env.seq),
      "data-symbol": raw(d.symbol),
      "data-side": raw(d.side),
      "data-quantity": raw(d.quantity),
      "data-price": raw(d.price),
    });
    li.title = "trade " + d.trade_id + ", run " + env.run_id;
    var time = span("t-time", fmtTime(env.ts_ns));
    var side = span("t-side " + (d.side === "sell" ? "sell" : "buy"), raw(d.side));
    var what = span("t-what", "");
    what.append(fmtQty(d.quantity) + " ");
    var sym = document.createElement("b");
    sym.textContent = raw(d.symbol);
    what.append(sym, " @ " + fmtPrice(d.price));
    var seq = span("t-seq", "#" + raw(env.seq));
    li.append(time, side, what, seq);
    return li;
  }

  // --- DOM helpers ----------------------------------------------------------------------

  function makeRow(tbody, rows, symbol, numCells) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-symbol", symbol);
    var th = document.createElement("td");
    th.className = "sym";
    th.textContent = symbol;
    tr.appendChild(th);
    var cells = [];
    for (var i = 0; i < numCells; i++) {
      var td = document.createElement("td");
      td.className = "num";
      tr.appendChild(td);
      cells.push(td);
    }
    // Rows stay sorted by symbol.
    var before = null;
    for (var node = tbody.firstElementChild; node; node = node.nextElementSibling) {
      if (node.getAttribute("data-symbol") > symbol) {
        before = node;
        break;
      }
    }
    tbody.insertBefore(tr, before);
    var row = { tr: tr, cells: cells };
    rows.set(symbol, row);
    return row;
  }

  function span(cls, text) {
    var s = document.createElement("span");
    s.className = cls;
    s.textContent = text;
    return s;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function setAttrs(node, attrs) {
    Object.keys(attrs).forEach(function (name) {
      if (node.getAttribute(name) !== attrs[name]) node.setAttribute(name, attrs[name]);
    });
  }

  function setPnl(node, v) {
    setText(node, fmtSigned(v));
    node.classList.toggle("up", typeof v === "number" && v > 0);
    node.classList.toggle("down", typeof v === "number" && v < 0);
  }

  // --- formatting (visible text only; data-* keep the raw values) ----------------------

  var count = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  var money = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  var signed = new Intl.NumberFormat("en-US", {
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
    signDisplay: "exceptZero",
  });
  var small = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 6 });
  var qty = new Intl.NumberFormat("en-US", { maximumFractionDigits: 6 });
  var clock = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  var DASH = "\u2013";

  function raw(v) {
    return v === undefined || v === null ? "" : String(v);
  }

  function isNum(v) {
    return typeof v === "number" && isFinite(v);
  }

  function fmtPrice(v) {
    if (!isNum(v)) return DASH;
    return Math.abs(v) >= 1 || v === 0 ? money.format(v) : small.format(v);
  }

  function fmtMoney(v) {
    return isNum(v) ? money.format(v) : DASH;
  }

  function fmtSigned(v) {
    return isNum(v) ? signed.format(v) : DASH;
  }

  function fmtQty(v) {
    return isNum(v) ? qty.format(v) : DASH;
  }

  function fmtTime(tsNs) {
    if (!isNum(tsNs)) return DASH;
    var d = new Date(tsNs / 1e6);
    return isNaN(d.getTime()) ? DASH : clock.format(d);
  }

  function shortRun(run) {
    return run.length > 14 ? run.slice(0, 12) + "\u2026" : run;
  }

  // --- start --------------------------------------------------------------------------

  var counted = 0;
  setInterval(function () {
    var now = pub.frames;
    if (now - counted !== rate) {
      rate = now - counted;
      markHeader();
    }
    counted = now;
  }, 1000);

  schedule();
  connect();
})();
