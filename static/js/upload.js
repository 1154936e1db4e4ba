// The upload page. Photos picked, dropped or taken from a folder are checked here against the
// chosen restoration's limits (type, size, pixels: the server's own figures and sentences, from
// the page's "upload-limits"), priced, and each good one is sent in a request of its own, with
// its own progress bar and outcome. Every request names the upload's token, so the photos form
// one batch. Without this script the form posts every photo at once. No build step.
(function () {
  "use strict";

  var form = document.getElementById("upload-form");
  var limitsNode = document.getElementById("upload-limits");
  if (!form || !limitsNode || !window.FormData || !window.XMLHttpRequest || !window.Promise) {
    return;
  }
  var LIMITS = JSON.parse(limitsNode.textContent);
  var PARALLEL = 3;  // photos in flight at once; the browser keeps a connection for the rest
  var photoUrl = form.dataset.photoUrl;
  var picker = form.querySelector("input[type=file][name=photos]");
  var operation = document.getElementById("id_operation");
  var selection = document.getElementById("selection");
  var rows = document.getElementById("selection-rows");
  var total = document.getElementById("selection-total");
  var clear = document.getElementById("selection-clear");
  var button = document.getElementById("upload-button");
  var outcome = document.getElementById("upload-done");
  var dropzone = document.getElementById("dropzone");

  var entries = [];
  var running = false;
  var finished = false;  // the list shows a finished upload: new photos start a new list

  // Page furniture that only makes sense with this script.
  document.getElementById("photos-help").hidden = true;
  form.querySelectorAll(".js-enhanced").forEach(function (node) { node.hidden = false; });
  picker.removeAttribute("required");
  var probe = document.createElement("input");
  if ("webkitdirectory" in probe) {
    var folder = document.createElement("input");
    folder.type = "file";
    folder.id = "folder-input";
    folder.multiple = true;
    folder.webkitdirectory = true;
    var label = document.createElement("label");
    label.htmlFor = folder.id;
    label.textContent = "Or a folder";
    var line = document.createElement("p");
    line.appendChild(label);
    line.appendChild(folder);
    picker.parentNode.insertAdjacentElement("afterend", line);
    folder.addEventListener("change", function () { addFiles(folder.files); folder.value = ""; });
  }
  picker.addEventListener("change", function () { addFiles(picker.files); picker.value = ""; });

  // Drag and drop, folders included where the browser hands them over as entries.
  ["dragenter", "dragover"].forEach(function (kind) {
    form.addEventListener(kind, function (event) {
      event.preventDefault();
      dropzone.classList.add("dropping");
    });
  });
  ["dragleave", "drop"].forEach(function (kind) {
    form.addEventListener(kind, function () { dropzone.classList.remove("dropping"); });
  });
  form.addEventListener("drop", function (event) {
    event.preventDefault();
    if (running) { return; }
    var items = event.dataTransfer.items;
    if (!items || !items.length) { addFiles(event.dataTransfer.files); return; }
    var found = [];
    Array.prototype.forEach.call(items, function (item) {
      if (item.kind !== "file") { return; }
      var entry = item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
      var file = item.getAsFile();  // read now: the items are emptied after the event
      found.push(entry ? filesOf(entry) : Promise.resolve(file ? [file] : []));
    });
    Promise.all(found).then(function (lists) { addFiles([].concat.apply([], lists)); });
  });

  function filesOf(entry) {
    if (entry.isFile) {
      return new Promise(function (resolve) {
        entry.file(function (file) { resolve([file]); }, function () { resolve([]); });
      });
    }
    var reader = entry.createReader();
    var children = [];
    return new Promise(function (resolve) {
      (function more() {  // a folder's entries come a hundred at a time
        reader.readEntries(function (batch) {
          if (!batch.length) {
            Promise.all(children).then(function (lists) { resolve([].concat.apply([], lists)); });
            return;
          }
          batch.forEach(function (child) { children.push(filesOf(child)); });
          more();
        }, function () { resolve([]); });
      })();
    });
  }

  // The selection: one row per photo, with its check, price, progress and outcome.
  function addFiles(files) {
    if (running) { return; }
    if (finished) { clearList(); }
    Array.prototype.forEach.call(files, function (file) {
      var name = file.webkitRelativePath || file.name;
      var twice = entries.some(function (e) {
        return e.name === name && e.file.size === file.size &&
          e.file.lastModified === file.lastModified;
      });
      if (!twice) { entries.push(newEntry(file, name)); }
    });
    selection.hidden = !entries.length;
    entries.forEach(check);
  }

  function newEntry(file, name) {
    var row = document.createElement("tr");
    row.className = "upload-file";
    row.dataset.name = name;
    row.innerHTML = '<td class="file"><span class="file-name"></span>' +
      '<span class="file-message"></span></td><td class="file-size" data-label="Size"></td>' +
      '<td class="file-credits" data-label="Credits"></td><td class="file-upload" ' +
      'data-label="Upload"><progress max="100" value="0" hidden></progress> ' +
      '<span class="file-state"></span></td>';
    row.querySelector(".file-name").textContent = name;
    row.querySelector("progress").setAttribute("aria-label", "Upload of " + name);
    rows.appendChild(row);
    var entry = { file: file, name: name, row: row, state: "checking", size: null };
    entry.measured = measure(file).then(function (size) { entry.size = size; });
    return entry;
  }

  function clearList() {
    entries = [];
    rows.innerHTML = "";
    selection.hidden = true;
    outcome.hidden = true;
    finished = false;
    update();
  }
  clear.addEventListener("click", function () { if (!running) { clearList(); } });

  // The photo's pixels, from the browser's own decoder; null when it cannot read the file
  // (a TIFF, a damaged file): the server decides those.
  function measure(file) {
    return new Promise(function (resolve) {
      if (!window.URL || !URL.createObjectURL) { resolve(null); return; }
      var url = URL.createObjectURL(file);
      var image = new Image();
      image.onload = function () {
        URL.revokeObjectURL(url);
        resolve({ width: image.naturalWidth, height: image.naturalHeight });
      };
      image.onerror = function () { URL.revokeObjectURL(url); resolve(null); };
      image.src = url;
    });
  }

  function spec() { return LIMITS.operations[operation.value]; }

  function extension(name) {
    var dot = name.lastIndexOf(".");
    return dot < 0 ? "" : name.slice(dot).toLowerCase();
  }

  // The refusal of a file by its declared type and size, or "" when it may be sent.
  function refusal(file, limits) {
    var type = (file.type || "").toLowerCase();
    var ext = extension(file.name);
    if (type === "image/svg+xml" || ext === ".svg") { return limits.messages.svg; }
    var known = limits.types[type] || ((!type || type === "application/octet-stream") &&
      limits.extensions[ext]);
    if (!known) {
      var other = formatElsewhere(type, ext);
      if (other) { return limits.messages.format.replace("{format}", other); }
      return limits.messages.not_image;
    }
    if (file.size === 0) { return limits.messages.empty; }
    if (file.size > limits.max_bytes) {
      return limits.messages.too_large.replace("{size}", fileSize(file.size));
    }
    return "";
  }

  function formatElsewhere(type, ext) {
    var names = LIMITS.format_names;
    for (var key in LIMITS.operations) {
      var other = LIMITS.operations[key];
      var format = other.types[type] || other.extensions[ext];
      if (format) { return names[format] || format; }
    }
    if (type.indexOf("image/") === 0) { return type.slice(6).toUpperCase(); }
    return "";
  }

  function check(entry) {
    if (entry.state !== "checking" && entry.state !== "ready" && entry.state !== "refused") {
      return;
    }
    var limits = spec();
    var message = refusal(entry.file, limits);
    if (message) { refuse(entry, message); return; }
    entry.state = "checking";
    entry.checked = entry.measured.then(function () {
      if (limits !== spec()) { return; }  // the restoration changed meanwhile: checked again
      var size = entry.size;
      if (size && (size.width > limits.max_width || size.height > limits.max_height)) {
        refuse(entry, limits.messages.too_many_pixels
          .replace("{width}", size.width).replace("{height}", size.height));
      } else {
        entry.state = "ready";
        show(entry, "Ready", "");
      }
    });
    show(entry, "Checking…", "");
  }

  function refuse(entry, message) {
    entry.state = "refused";
    entry.checked = Promise.resolve();
    show(entry, "Not sent", message);
  }

  function show(entry, state, message) {
    var row = entry.row;
    row.dataset.state = entry.state;
    row.querySelector(".file-state").textContent = state;
    var note = row.querySelector(".file-message");
    note.textContent = message;
    note.className = "file-message" + (message ? " error" : "");
    var size = entry.size;
    row.querySelector(".file-size").textContent = fileSize(entry.file.size) +
      (size ? " · " + size.width + " × " + size.height : "");
    update();
  }

  // Credits: per photo from the restoration's rule, and the total of what will be (or was) sent.
  function optionValue(name) {
    var field = form.elements[operation.value + "__" + name];
    return field ? field.value : "";
  }

  function credits(entry) {
    var rule = spec().credits;
    if (rule.option) {
      var value = rule.per_value[optionValue(rule.option)];
      return [value === undefined ? rule.base : value];
    }
    if (rule.large !== null) {
      if (!entry.size) { return [rule.base, rule.large]; }
      var edge = Math.max(entry.size.width, entry.size.height);
      return [edge > rule.large_over ? rule.large : rule.base];
    }
    return [rule.base];
  }

  function charged(entry) {
    return entry.state === "ready" || entry.state === "checking" || entry.state === "sending" ||
      entry.state === "sent";
  }

  function update() {
    var low = 0, high = 0, count = 0;
    var rule = spec().credits;
    entries.forEach(function (entry) {
      var cell = entry.row.querySelector(".file-credits");
      if (!charged(entry)) { cell.textContent = "–"; return; }
      var price = credits(entry);
      cell.textContent = price.join("–");
      low += price[0];
      high += price[price.length - 1];
      count += 1;
    });
    var amount = low === high ? String(low) : low + "–" + high;
    var text = count ? "Total for " + count + " photo" + (count === 1 ? "" : "s") + ": " +
      (rule.estimate ? "about " : "") + amount + " credit" + (high === 1 ? "" : "s") + "." : "";
    if (count && LIMITS.free) { text += " This team uses the built-in engine, which charges none."; }
    total.textContent = text;
  }

  form.addEventListener("change", function (event) {
    if (running || event.target === picker || event.target.id === "folder-input") { return; }
    if (event.target === operation) { entries.forEach(check); }
    update();
  });

  // Sending: each photo in its own request, a few at a time; a refusal stops only its photo.
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (running) { return; }
    if (!entries.length || finished) {
      say("Choose at least one photo.", null);
      return;
    }
    running = true;
    button.disabled = true;
    Promise.all(entries.map(function (e) { return e.checked; })).then(start);
  });

  // The upload in progress: the fields every photo's request carries (its token among them),
  // the photos still to send, how many are on their way, and the batch they made.
  var fields = [], queue = [], active = 0, batchUrl = null;

  function start() {
    var list = entries.filter(function (e) { return e.state === "ready"; });
    if (!list.length) {
      running = false;
      button.disabled = false;
      say("None of these photos can be uploaded: see the reason next to each.", null);
      return;
    }
    form.elements.upload.value = newToken();  // a new upload, a new batch
    fields = [];
    new FormData(form).forEach(function (value, name) {
      if (name !== "photos") { fields.push([name, value]); }
    });
    queue = list;
    batchUrl = null;
    lock(true);
    outcome.hidden = true;
    pump();
  }

  function pump() {
    while (active < PARALLEL && queue.length) {
      active += 1;
      send(queue.shift(), function (answer) {
        active -= 1;
        if (answer && answer.batch_url) { batchUrl = answer.batch_url; }
        if (queue.length) { pump(); } else if (!active) { finish(batchUrl); }
      });
    }
  }

  // A photo whose request failed for a passing reason goes again, into the same upload.
  function sendAgain(entry) {
    if (!running) {
      running = true;
      lock(true);
      outcome.hidden = true;
    }
    queue.push(entry);
    pump();
  }

  function send(entry, done) {
    var data = new FormData();
    fields.forEach(function (pair) { data.append(pair[0], pair[1]); });
    data.append("photo", entry.file, entry.file.name);
    var bar = entry.row.querySelector("progress");
    bar.hidden = false;
    bar.value = 0;
    entry.state = "sending";
    show(entry, "Sending…", "");
    var request = new XMLHttpRequest();
    // Until the last byte is sent the photo can be stopped; after that the server decides.
    var stop = rowButton(entry, "Cancel", "Cancel the upload of ", function () { request.abort(); });
    request.open("POST", photoUrl);
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) {
        bar.value = Math.round(100 * event.loaded / event.total);
        entry.row.querySelector(".file-state").textContent = "Sending… " + bar.value + "%";
      }
    });
    request.upload.addEventListener("load", function () { stop.remove(); });
    request.addEventListener("load", function () {
      stop.remove();
      var answer = parse(request.responseText);
      if (request.status === 201 && answer && answer.task_url) {
        bar.value = 100;
        entry.state = "sent";
        show(entry, "", "");
        var link = document.createElement("a");
        link.href = answer.task_url;
        link.textContent = "Uploaded: see its restoration";
        entry.row.querySelector(".file-state").appendChild(link);
        done(answer);
      } else {
        failed(entry, (answer && answer.error) || unexpected(request.status),
          passing(request.status));
        done(null);
      }
    });
    request.addEventListener("error", function () {
      stop.remove();
      failed(entry, "The connection broke while this photo was sent.", true);
      done(null);
    });
    request.addEventListener("abort", function () {
      entry.state = "canceled";
      bar.hidden = true;
      show(entry, "Canceled", "");
      done(null);
    });
    request.send(data);
  }

  // A button in the photo's row, named for the photo ("Cancel the upload of beach.jpg").
  function rowButton(entry, text, label, action) {
    var control = document.createElement("button");
    control.type = "button";
    control.className = "link";
    control.textContent = text;
    control.setAttribute("aria-label", label + entry.name);
    control.addEventListener("click", function () { control.remove(); action(); });
    entry.row.querySelector(".file-upload").appendChild(control);
    return control;
  }

  function failed(entry, message, canTryAgain) {
    entry.state = "failed";
    entry.row.querySelector("progress").hidden = true;
    show(entry, "Not uploaded", message);
    if (canTryAgain) {
      rowButton(entry, "Try again", "Upload again: ", function () { sendAgain(entry); });
    }
  }

  // Whether a refusal may pass: the server busy or failing, or the session ended (sign in
  // again in another tab, then try again); never a refusal of the photo itself.
  function passing(status) {
    return status === 0 || status === 200 || status === 429 || status >= 500;
  }

  function unexpected(status) {
    if (status === 200) {  // a login page: the session ended
      return "You were signed out. Sign in again, then try again.";
    }
    if (status === 403) { return "You may not upload photos to this team."; }
    if (status === 413) { return "The server refused a file this large."; }
    if (status === 429) { return "The server is busy. Try again in a moment."; }
    return "The server could not take this photo (error " + status + ").";
  }

  function parse(text) {
    try { return JSON.parse(text); } catch (error) { return null; }
  }

  function finish(batchUrl) {
    running = false;
    finished = true;
    lock(false);
    var sent = entries.filter(function (e) { return e.state === "sent"; }).length;
    var notSent = entries.length - sent;
    var text = sent + " photo" + (sent === 1 ? "" : "s") + " uploaded" +
      (notSent ? ", " + notSent + " not (the reason is next to each)." : ".");
    say(text, sent ? batchUrl : null);
  }

  function say(text, batchUrl) {
    outcome.innerHTML = "";
    var line = document.createElement("p");
    line.textContent = text + " ";
    if (batchUrl) {
      var link = document.createElement("a");
      link.href = batchUrl;
      link.className = "button primary";
      link.textContent = "See this upload's photos";
      line.appendChild(link);
    }
    outcome.appendChild(line);
    outcome.hidden = false;
  }

  function lock(locked) {
    button.disabled = locked;
    clear.disabled = locked;
    form.querySelectorAll("select, input[type=file]").forEach(function (field) {
      if (locked) {
        field.dataset.wasDisabled = field.disabled ? "1" : "0";
        field.disabled = true;
      } else {
        field.disabled = field.dataset.wasDisabled === "1";
      }
    });
  }

  function newToken() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;  // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80;  // RFC 4122 variant
    var hex = Array.prototype.map.call(bytes, function (b) {
      return (b + 0x100).toString(16).slice(1);
    }).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20),
      hex.slice(20)].join("-");
  }

  // Sizes as the server writes them (Django's filesizeformat), so the sentences match.
  function fileSize(bytes) {
    var units = [["GB", 1073741824], ["MB", 1048576], ["KB", 1024]];
    for (var i = 0; i < units.length; i++) {
      if (bytes >= units[i][1]) {
        return (bytes / units[i][1]).toFixed(1) + "\u00a0" + units[i][0];
      }
    }
    return bytes + "\u00a0byte" + (bytes === 1 ? "" : "s");
  }

  // Photos chosen while the page was still loading, before this script ran, are taken in.
  if (picker.files.length) { addFiles(picker.files); picker.value = ""; }
})();
