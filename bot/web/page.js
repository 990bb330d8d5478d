// The chat page's small script: embed mode, and [n] markers that move focus to their source.
(function () {
  var params = new URLSearchParams(window.location.search);
  if (params.get("embed") === "1") document.documentElement.classList.add("embed");
  document.addEventListener("click", function (event) {
    var link = event.target instanceof Element ? event.target.closest("a.cite") : null;
    if (!link) return;
    var target = document.getElementById((link.getAttribute("href") || "").replace(/^#/, ""));
    if (!target) return;
    event.preventDefault();
    var group = target.closest("details");
    if (group) group.open = true;
    target.scrollIntoView({ behavior: "smooth", block: "nearest" });
    target.focus({ preventScroll: true });
    target.classList.add("flash");
    window.setTimeout(function () { target.classList.remove("flash"); }, 1600);
  });
})();
