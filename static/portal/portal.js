// Small enhancements; every page works without them.
(function () {
  "use strict";
  var root = document.documentElement;

  // Theme toggle: light <-> dark, remembered in localStorage; default follows the system.
  function currentTheme() {
    var set = root.getAttribute("data-theme");
    if (set) return set;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  function label(button) {
    var next = currentTheme() === "dark" ? "light" : "dark";
    button.setAttribute("aria-label", "Switch to " + next + " theme");
    button.setAttribute("aria-pressed", currentTheme() === "dark" ? "true" : "false");
    var dark = currentTheme() === "dark";
    button.innerHTML = '<span aria-hidden="true">' + (dark ? "☀" : "☾") + '</span> <span class="label">' +
      (dark ? "Light" : "Dark") + "</span>";
  }
  document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
    button.hidden = false;
    label(button);
    button.addEventListener("click", function () {
      var next = currentTheme() === "dark" ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try { localStorage.setItem("cp-theme", next); } catch (e) { /* not remembered */ }
      label(button);
    });
  });

  // Image choices follow the chosen plan's guest type (the server checks again).
  function filterImages() {
    var plan = document.querySelector("input[name=plan]:checked");
    var select = document.getElementById("id_image");
    if (!plan || !select) return;
    var type = plan.getAttribute("data-guest-type");
    Array.prototype.forEach.call(select.options, function (option) {
      var optionType = option.getAttribute("data-guest-type");
      var hide = optionType && optionType !== type;
      option.hidden = hide;
      option.disabled = hide;
      if (hide && option.selected) select.value = "";
    });
  }
  document.querySelectorAll("input[name=plan]").forEach(function (input) {
    input.addEventListener("change", filterImages);
  });
  filterImages();

  // Close an open confirmation with Escape and return focus to its button.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.confirm[open]").forEach(function (details) {
      details.open = false;
      var summary = details.querySelector("summary");
      if (summary) summary.focus();
    });
  });
})();
