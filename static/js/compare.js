// The task page's before-and-after comparison. The split between the original (left of it)
// and the result (right of it) follows the slider, which the keyboard moves, and a drag across
// the photo. No build step.
(function () {
  "use strict";

  var box = document.getElementById("compare");
  var slider = document.getElementById("compare-split");
  if (!box || !slider) { return; }

  function split(percent) {
    var value = Math.round(Math.max(0, Math.min(100, percent)));
    box.style.setProperty("--split", value + "%");
    slider.value = value;
    slider.setAttribute("aria-valuetext", value + "% before, " + (100 - value) + "% after");
  }

  slider.addEventListener("input", function () { split(Number(slider.value)); });

  var dragging = false;
  function follow(event) {
    var rect = box.getBoundingClientRect();
    split(((event.clientX - rect.left) / rect.width) * 100);
  }
  box.addEventListener("pointerdown", function (event) {
    dragging = true;
    box.setPointerCapture(event.pointerId);
    follow(event);
    event.preventDefault();
  });
  box.addEventListener("pointermove", function (event) { if (dragging) { follow(event); } });
  box.addEventListener("pointerup", function () { dragging = false; });
  box.addEventListener("pointercancel", function () { dragging = false; });

  split(Number(slider.value));
})();
