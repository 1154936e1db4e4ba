// Live progress and the operation's option group. No build step.
(function () {
  "use strict";

  // Show only the chosen operation's options.
  var operation = document.getElementById("id_operation");
  if (operation) {
    var showOptions = function () {
      document.querySelectorAll("fieldset.options").forEach(function (group) {
        var active = group.dataset.operation === operation.value;
        group.hidden = !active;
        group.disabled = !active;
      });
    };
    operation.addEventListener("change", showOptions);
    showOptions();
  }

  // Live progress: one request per refresh for every task on the page still in flight
  // (GET live/?ids=a,b,c), none while nothing is; a row that is in flight again (its
  // data-final back to "0") starts the refreshes again. The first comes as the page loads.
  // A batch page's summary (its data-batch-id, data-final "0" while any photo is in flight)
  // rides on the same request (&batch=id), which answers its counts and failures too.
  var REFRESH_MS = 2000;
  var MAX_IDS = 100;
  var liveUrl = document.body.dataset.liveUrl;
  var timer = null;

  function pending() {
    return Array.prototype.slice.call(
      document.querySelectorAll("[data-task-id][data-final='0']"), 0, MAX_IDS);
  }

  function show(element, status) {
    var state = element.querySelector(".js-state");
    if (state) {
      state.innerHTML = "";
      var badge = document.createElement("span");
      badge.className = "state state-" + status.category;
      badge.dataset.state = status.state;
      badge.textContent = status.label;
      state.appendChild(badge);
    }
    var bar = element.querySelector(".js-progress");
    if (bar) { bar.value = status.progress; bar.textContent = status.progress + "%"; }
    var checked = element.querySelector(".js-checked");
    if (checked) {
      checked.textContent = status.final ? "" : "last checked " + status.checked_seconds_ago + " s ago";
    }
    var outlook = element.querySelector(".js-outlook");
    if (outlook) { outlook.textContent = status.outlook; }
    var reason = element.querySelector(".js-reason");
    if (reason) {
      // A batch's rows name the reason of failures only.
      var shown = !reason.dataset.only || reason.dataset.only === status.group;
      reason.textContent = shown ? status.reason : "";
    }
    var advice = element.querySelector(".js-advice");
    if (advice) { advice.textContent = status.advice; }
    var result = element.querySelector(".js-result");
    if (result && status.result_url) { result.hidden = false; }
    var thumb = element.querySelector(".js-thumb");
    var src = status.result_thumbnail_url || status.thumbnail_url;
    if (thumb && src && thumb.getAttribute("src") !== src) { thumb.src = src; }
    if (status.final) {
      element.dataset.final = "1";
      if (element.id === "task") { window.location.reload(); }
    }
  }

  function pendingBatch() {
    return document.querySelector("[data-batch-id][data-final='0']");
  }

  function showBatch(element, summary) {
    Object.keys(summary.counts).forEach(function (group) {
      var count = element.querySelector(".js-count[data-group='" + group + "']");
      if (count) { count.textContent = summary.counts[group]; }
    });
    var failures = element.querySelector(".js-failures");
    if (failures && failures.dataset.version !== summary.failures_version) {
      failures.innerHTML = summary.failures_html;  // the server's own fragment, escaped there
      failures.dataset.version = summary.failures_version;
    }
    var outlook = element.querySelector(".js-batch-outlook");
    if (outlook) { outlook.textContent = summary.outlook; }
    var download = element.querySelector(".js-download");
    if (download) { download.hidden = !summary.counts.done; }  // a first result: "Download all"
    if (summary.final) { element.dataset.final = "1"; }
  }

  function refresh() {
    timer = null;
    var rows = pending();
    var batch = pendingBatch();
    if ((!rows.length && !batch) || !liveUrl) { return; }
    var ids = rows.map(function (row) { return row.dataset.taskId; });
    var url = liveUrl + "?ids=" + ids.join(",");
    if (batch) { url += "&batch=" + encodeURIComponent(batch.dataset.batchId); }
    fetch(url, { headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) {
        if (!answer) { return; }
        answer.tasks.forEach(function (status) {
          rows.forEach(function (row) {
            if (row.dataset.taskId === status.id) { show(row, status); }
          });
        });
        if (batch && answer.batch) { showBatch(batch, answer.batch); }
        if (batch && answer.batch === null) { batch.dataset.final = "1"; }  // gone: stop asking
      })
      .catch(function () { /* offline for a moment: the next refresh tries again */ })
      .then(function () { schedule(); });
  }

  function schedule(delay) {
    if (timer === null && (pending().length || pendingBatch())) {
      timer = window.setTimeout(refresh, typeof delay === "number" ? delay : REFRESH_MS);
    }
  }

  new MutationObserver(function () { schedule(); }).observe(document.body, {
    subtree: true, childList: true, attributes: true, attributeFilter: ["data-final"]
  });
  // The first refresh at once: it brings each row's place in the queue and expected finish.
  schedule(0);
})();
