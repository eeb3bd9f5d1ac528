// Applies the saved theme before the page paints (loaded synchronously in <head>).
(function () {
  try {
    var theme = localStorage.getItem("cp-theme");
    if (theme === "light" || theme === "dark") document.documentElement.setAttribute("data-theme", theme);
  } catch (e) { /* storage blocked: follow the system setting */ }
})();
