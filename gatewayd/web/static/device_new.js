/* "Add a device": the LoRaWAN fields follow the chosen kind and activation; fields out of view are
   disabled, so they are neither checked nor sent. */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("device-form");
  const chosen = (name) => (form.querySelector(`input[name="${name}"]:checked`) || {}).value;

  function show(el, visible) {
    el.hidden = !visible;
    for (const input of el.querySelectorAll("input, select")) input.disabled = !visible;
  }

  function update() {
    const kind = chosen("kind"), activation = chosen("activation");
    for (const el of form.querySelectorAll("[data-when-kind]")) show(el, el.dataset.whenKind === kind);
    if (kind !== "lorawan") return;
    for (const el of form.querySelectorAll("[data-when-activation]")) show(el, el.dataset.whenActivation === activation);
  }

  form.addEventListener("change", (event) => { if (["kind", "activation"].includes(event.target.name)) update(); });
  update();
});
