// The card payment page: loads Stripe.js, mounts its card element and confirms the payment.
// Everything comes from the form's data attributes (the CSP allows no inline script). Whatever
// happens here, the order is paid only when Stripe tells the server; the return page asks it.
(function () {
  "use strict";

  var form = document.getElementById("card-payment");
  if (!form) {
    return;
  }
  var data = form.dataset;
  var button = form.querySelector("button[type=submit]");
  var message = document.getElementById("card-message");

  function show(text) {
    message.textContent = text || "";
    message.hidden = !text;
  }

  function ready() {
    var stripe = window.Stripe(data.publishableKey);
    var card = stripe.elements().create("card");
    card.mount("#card-element");
    button.disabled = false;

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      button.disabled = true;
      show(data.paying);
      stripe
        .confirmCardPayment(data.clientSecret, { payment_method: { card: card } })
        .then(function (result) {
          if (result.error) {
            // A declined card can be corrected and tried again with the same payment.
            show(result.error.message || data.failed);
            button.disabled = false;
            return;
          }
          window.location.assign(data.returnUrl);
        })
        .catch(function () {
          show(data.failed);
          button.disabled = false;
        });
    });
  }

  var script = document.createElement("script");
  script.src = data.stripeJs;
  script.onload = ready;
  script.onerror = function () {
    show(data.unavailable);
  };
  document.head.appendChild(script);
})();
