// Optional extras; every page works without this file.
// An "update automatically" switch (off by default, remembered), and copy-on-focus snippets.
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || document.body.classList.contains("widget")) { return; }
  var key = "censorwatch-auto-refresh";
  var label = document.documentElement.lang === "ru" ? "Обновлять автоматически (раз в минуту)" : "Update automatically (every minute)";
  var wrap = document.createElement("p");
  wrap.className = "auto-refresh";
  var box = document.createElement("input");
  box.type = "checkbox";
  box.id = "auto-refresh";
  var text = document.createElement("label");
  text.htmlFor = "auto-refresh";
  text.textContent = " " + label;
  wrap.appendChild(box);
  wrap.appendChild(text);
  main.insertBefore(wrap, main.children[1] || null);
  var timer = null;
  function apply() {
    if (timer) { clearInterval(timer); timer = null; }
    if (box.checked) {
      timer = setInterval(function () { if (!document.hidden) { location.reload(); } }, 60000);
    }
  }
  try { box.checked = localStorage.getItem(key) === "1"; } catch (e) { box.checked = false; }
  box.addEventListener("change", function () {
    try { localStorage.setItem(key, box.checked ? "1" : "0"); } catch (e) { /* private mode */ }
    apply();
  });
  apply();
  document.documentElement.classList.add("js");
  var snippets = document.querySelectorAll(".snippet");
  for (var i = 0; i < snippets.length; i++) {
    snippets[i].addEventListener("focus", function (event) { event.target.select(); });
  }
}());
