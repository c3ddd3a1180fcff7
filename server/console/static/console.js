// tokenbroker console: progressive enhancement only. Every page works
// without this file; it adds the one-time secret dialog, copy and download
// buttons, the role preview, DRN checking as you type and small toggles.
// It never stores anything (no localStorage, no cookies) and never puts a
// secret in a URL.
(function () {
  "use strict";

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  // ---- sign-in tabs (arrow keys move between them, as ARIA tabs do) ----
  var tabs = $all("[data-tab]");
  function selectTab(btn, focus) {
    tabs.forEach(function (t) {
      var on = t === btn;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      var panel = document.getElementById(t.getAttribute("aria-controls"));
      if (panel) { panel.hidden = !on; }
    });
    if (focus) { btn.focus(); }
  }
  tabs.forEach(function (t, i) {
    t.tabIndex = t.getAttribute("aria-selected") === "true" ? 0 : -1;
    t.addEventListener("click", function () { selectTab(t, false); });
    t.addEventListener("keydown", function (e) {
      if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
        var next = tabs[(i + (e.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
        selectTab(next, true);
        e.preventDefault();
      }
    });
  });

  // ---- role picker: show the selected role's permissions ----
  var rolePick = $("#role");
  if (rolePick) {
    var showRole = function () {
      var id = rolePick.value;
      $all("[data-role-perms]").forEach(function (el) { el.hidden = el.getAttribute("data-role-perms") !== id; });
      var none = $("[data-role-none]");
      if (none) { none.hidden = id !== ""; }
    };
    rolePick.addEventListener("change", showRole);
    showRole();
  }

  // ---- "never expires" warning ----
  $all("[data-never-warning]").forEach(function (sel) {
    var warn = document.getElementById(sel.getAttribute("aria-describedby"));
    var sync = function () { if (warn) { warn.hidden = sel.value !== "never"; } };
    sel.addEventListener("change", sync);
    sync();
  });

  // ---- action picker helpers ----
  function setAll(v) { $all("#role-form input[name=action]").forEach(function (c) { c.checked = v; }); }
  $all("[data-check-all]").forEach(function (b) { b.addEventListener("click", function () { setAll(true); }); });
  $all("[data-check-none]").forEach(function (b) { b.addEventListener("click", function () { setAll(false); }); });

  // ---- DRN grammar (the same rules as server/policy; the API decides) ----
  var ident = /^[A-Za-z0-9_.\-]+$/;
  var lowerUUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  var anyUUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
  function valueProblem(what, v) {
    if (v === "") { return "empty " + what; }
    if (v === "*") { return ""; }
    if (v.indexOf("*") >= 0) { return what + " \"" + v + "\": a wildcard must be the whole segment \"*\""; }
    if (v.length > 128) { return what + " is longer than 128 characters"; }
    if (!ident.test(v)) { return what + " \"" + v + "\": allowed are letters, digits, \"_\", \".\" and \"-\""; }
    return "";
  }
  function drnProblem(p) {
    if (p.indexOf("drn:astra:org") !== 0) { return "must start with \"drn:astra:org:\""; }
    if (p === "drn:astra:org") { return "missing organization id after \"org\""; }
    if (p.indexOf("drn:astra:org:") !== 0) { return "must start with \"drn:astra:org:\""; }
    if (p.charAt(p.length - 1) === ":") { return "trailing colon"; }
    var s = p.split(":");
    if (s.length > 12) { return "too many segments: a table is the deepest level"; }
    var org = s[3];
    if (org === "") { return "empty organization id"; }
    if (!(org === "*" || org === "__ORG_ID__" || lowerUUID.test(org))) {
      if (org.indexOf("*") >= 0) { return "organization id: a wildcard must be the whole segment \"*\""; }
      if (anyUUID.test(org)) { return "organization id \"" + org + "\": UUID must be lowercase"; }
      return "invalid organization id \"" + org + "\": want a UUID, \"*\" or \"__ORG_ID__\"";
    }
    var rest = s.slice(4);
    if (rest.length === 0) { return ""; }
    var kw = rest[0];
    if (kw === "db") {
      var levels = [["db", "database id"], ["keyspace", "keyspace name"], ["table", "table name"]];
      var prev = "organization id";
      for (var i = 0; i < levels.length; i++) {
        if (rest.length === 0) { return ""; }
        if (rest[0] !== levels[i][0]) { return "unexpected \"" + rest[0] + "\" after " + prev + ": want \"" + levels[i][0] + "\""; }
        if (rest.length === 1) { return "missing " + levels[i][1] + " after \"" + levels[i][0] + "\""; }
        var m = valueProblem(levels[i][1], rest[1]);
        if (m) { return m; }
        prev = levels[i][1];
        rest = rest.slice(2);
      }
      if (rest.length > 0) { return "unexpected \"" + rest[0] + "\" after table name: a table is the deepest level"; }
      return "";
    }
    if (kw === "stream" || kw === "role") {
      var what = kw === "role" ? "role id" : "tenant name";
      if (rest.length === 1) { return "missing " + what + " after \"" + kw + "\""; }
      var mm = valueProblem(what, rest[1]);
      if (mm) { return mm; }
      if (rest.length > 2) { return "unexpected \"" + rest[2] + "\" after " + what; }
      return "";
    }
    if (kw === "") { return "empty segment after organization id"; }
    var low = kw.toLowerCase();
    if (low === "db" || low === "stream" || low === "role") { return "unknown resource type \"" + kw + "\": keywords are lowercase"; }
    return "unknown resource type \"" + kw + "\" after organization id: want \"db\", \"stream\" or \"role\"";
  }
  $all("[data-drn-validate]").forEach(function (ta) {
    var out = $("[data-drn-status]");
    var check = function () {
      var problems = [];
      ta.value.split("\n").forEach(function (line, i) {
        line = line.trim();
        if (line === "") { return; }
        var m = drnProblem(line);
        if (m) { problems.push("Line " + (i + 1) + ": " + m); }
      });
      ta.setAttribute("aria-invalid", problems.length ? "true" : "false");
      ta.setCustomValidity(problems.length ? problems[0] : "");
      if (out) {
        out.textContent = problems.length ? problems.join(" · ") : "All resources are valid DRNs.";
        out.className = problems.length ? "help bad" : "help";
      }
    };
    ta.addEventListener("input", check);
    check();
  });

  // ---- the once-shown secret dialog ----
  var dlg = $("dialog[data-autoshow]");
  if (dlg) {
    var status = $("[data-copy-status]", dlg);
    var values = function () {
      var o = {};
      $all("[data-field]", dlg).forEach(function (el) { o[el.getAttribute("data-field")] = el.textContent; });
      return o;
    };
    var copy = function (text) {
      if (navigator.clipboard && window.isSecureContext) { return navigator.clipboard.writeText(text); }
      return new Promise(function (resolve, reject) {
        var ta = document.createElement("textarea");
        ta.value = text;
        ta.setAttribute("readonly", "");
        ta.className = "sr-only";
        document.body.appendChild(ta);
        ta.select();
        var ok = document.execCommand("copy");
        ta.value = "";
        ta.remove();
        if (ok) { resolve(); } else { reject(new Error("copy refused")); }
      });
    };
    $all("[data-copy]", dlg).forEach(function (b) {
      b.addEventListener("click", function () {
        var el = document.getElementById(b.getAttribute("data-copy"));
        copy(el.textContent).then(function () {
          b.textContent = "Copied";
          if (status) { status.textContent = b.getAttribute("aria-label").replace("Copy", "Copied"); }
        }, function () {
          var r = document.createRange();
          r.selectNodeContents(el);
          var sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(r);
          if (status) { status.textContent = "Copy was refused: the value is selected, press Ctrl+C."; }
        });
      });
    });
    var csvCell = function (v) { return "\"" + String(v).replace(/"/g, "\"\"") + "\""; };
    $all("[data-download]", dlg).forEach(function (b) {
      b.addEventListener("click", function () {
        var kind = b.getAttribute("data-download");
        var v = values();
        var body, type;
        if (kind === "csv") {
          var keys = Object.keys(v);
          body = keys.map(csvCell).join(",") + "\r\n" + keys.map(function (k) { return csvCell(v[k]); }).join(",") + "\r\n";
          type = "text/csv";
        } else {
          body = JSON.stringify(v, null, 2) + "\n";
          type = "application/json";
        }
        var url = URL.createObjectURL(new Blob([body], { type: type }));
        var a = document.createElement("a");
        a.href = url;
        a.download = (dlg.getAttribute("data-filename") || "token") + "." + kind;
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
      });
    });
    $all("[data-close]", dlg).forEach(function (b) { b.addEventListener("click", function () { dlg.close(); }); });
    // Closing (button or Escape) wipes the secret from the page and leaves
    // the POST result for a plain GET page, so neither Back nor a reload
    // brings it back.
    dlg.addEventListener("close", function () {
      $all("[data-field]", dlg).forEach(function (el) { el.textContent = ""; });
      dlg.remove();
      var after = dlg.getAttribute("data-after-close");
      window.location.replace(after || window.location.pathname);
    });
    if (typeof dlg.showModal === "function") { dlg.showModal(); } else { dlg.setAttribute("open", ""); }
    var first = $("[data-copy]", dlg);
    if (first) { first.focus(); }
  }
})();
