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

  // Poll each unfinished task's status and update its state, progress and result link.
  function refresh(element) {
    fetch(element.dataset.taskStatus, { headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) {
        if (!status) { return; }
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
        var reason = element.querySelector(".js-reason");
        if (reason) { reason.textContent = status.reason; }
        var advice = element.querySelector(".js-advice");
        if (advice) { advice.textContent = status.advice; }
        var result = element.querySelector(".js-result");
        if (result && status.result_url) { result.hidden = false; }
        if (status.final) {
          element.dataset.final = "1";
          if (element.id === "task") { window.location.reload(); }
        }
      })
      .catch(function () { /* offline for a moment: the next tick tries again */ });
  }

  function tick() {
    var pending = document.querySelectorAll("[data-task-status][data-final='0']");
    pending.forEach(refresh);
    if (pending.length) { window.setTimeout(tick, 1500); }
  }
  window.setTimeout(tick, 1000);
})();
