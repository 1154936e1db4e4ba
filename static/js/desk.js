// Live progress, the operation's option group, and the team switcher. No build step.
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

  // Switch team from the header.
  var teamSelect = document.getElementById("team-select");
  if (teamSelect) {
    teamSelect.addEventListener("change", function () {
      var form = document.getElementById("team-switch");
      form.action = teamSelect.dataset.switchUrl.replace(
        "00000000-0000-0000-0000-000000000000", teamSelect.value);
      form.submit();
    });
  }

  // Live progress: one request per refresh for every task on the page still in flight
  // (GET live/?ids=a,b,c), none while nothing is; a row that is in flight again (its
  // data-final back to "0") starts the refreshes again. The first comes as the page loads.
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
    if (reason) { reason.textContent = status.reason; }
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

  function refresh() {
    timer = null;
    var rows = pending();
    if (!rows.length || !liveUrl) { return; }
    var ids = rows.map(function (row) { return row.dataset.taskId; });
    fetch(liveUrl + "?ids=" + ids.join(","), { headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) {
        if (!answer) { return; }
        answer.tasks.forEach(function (status) {
          rows.forEach(function (row) {
            if (row.dataset.taskId === status.id) { show(row, status); }
          });
        });
      })
      .catch(function () { /* offline for a moment: the next refresh tries again */ })
      .then(function () { schedule(); });
  }

  function schedule(delay) {
    if (timer === null && pending().length) {
      timer = window.setTimeout(refresh, typeof delay === "number" ? delay : REFRESH_MS);
    }
  }

  new MutationObserver(function () { schedule(); }).observe(document.body, {
    subtree: true, childList: true, attributes: true, attributeFilter: ["data-final"]
  });
  // The first refresh at once: it brings each row's place in the queue and expected finish.
  schedule(0);
})();
