// Click-to-zoom for the figures of a page (added by book/_ext/course_site.py).
// A click on a figure shows it at up to the whole window; a click anywhere or Escape closes it.
(function () {
  "use strict";
  function close() {
    const open = document.querySelector("div.course-zoom");
    if (open) { open.remove(); }
  }
  function zoom(img) {
    close();
    const overlay = document.createElement("div");
    overlay.className = "course-zoom";
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-label", "Enlarged figure (click or press Escape to close)");
    const big = document.createElement("img");
    big.src = img.currentSrc || img.src;
    big.alt = img.alt;
    overlay.appendChild(big);
    overlay.addEventListener("click", close);
    document.body.appendChild(overlay);
  }
  function setup() {
    document.querySelectorAll(".bd-article .cell_output img, .bd-article figure img").forEach(function (img) {
      if (img.closest("a")) { return; }
      img.classList.add("course-zoomable");
      img.setAttribute("tabindex", "0");
      img.addEventListener("click", function () { zoom(img); });
      img.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); zoom(img); }
      });
    });
    document.addEventListener("keydown", function (event) { if (event.key === "Escape") { close(); } });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", setup); } else { setup(); }
})();
