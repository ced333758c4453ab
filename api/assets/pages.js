// The one script of the pages: the dashboard's copy button. Everything else works
// without JavaScript.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  const status = document.getElementById("copy-status");
  field.select();
  let copied = false;
  try {
    await navigator.clipboard.writeText(field.value);
    copied = true;
  } catch (_) {
    // Clipboard API refused (an iframe without permission): the older command still
    // copies the selected text in most browsers.
    copied = document.execCommand && document.execCommand("copy");
  }
  if (status) status.textContent = copied ? "Copied" : "Press Ctrl+C to copy";
});
