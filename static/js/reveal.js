// Lays out the parts of the playground marked data-later one per animation frame (see the
// stylesheet: the first layout of a fresh page waits on the browser process for each new
// font and form control it meets, and the whole page in one layout made a 50-90 ms task on
// a 2-core machine). A classic script at the end of <body>: it runs as soon as the page is
// parsed, so the parts are in place well before the first frame arrives from the server.
(function revealInTurn() {
  const later = [...document.querySelectorAll("[data-later]")];
  const next = () => {
    const element = later.shift();
    if (element) element.removeAttribute("data-later");
    if (later.length) requestAnimationFrame(next);
  };
  requestAnimationFrame(next);
})();
