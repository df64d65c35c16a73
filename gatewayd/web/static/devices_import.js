/* Import result: the created devices (with their tokens) as a CSV file made in the browser, so the
   tokens never travel again. Cells a spreadsheet would run as formulas are made plain text. */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("download-tokens");
  if (!button) return;
  const cell = (text) => {
    const value = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
    return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
  };
  button.addEventListener("click", () => {
    const lines = [["line", "name", "kind", "id", "token"].join(",")];
    for (const row of document.querySelectorAll("#created tbody tr")) {
      const [line, name, kind, id, token] = [...row.cells].map((c) => c.textContent.trim());
      lines.push([line, name, kind, id, token.startsWith("tok_") ? token : ""].map(cell).join(","));
    }
    const url = URL.createObjectURL(new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv" }));
    const link = GW.element("a", { href: url, download: "imported-devices.csv" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });
});
