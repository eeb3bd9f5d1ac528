// Razorpay Checkout hand-off (https://razorpay.com/docs/payments/payment-gateway/web-integration/standard/):
// open Checkout with the server's order, then post what its handler receives to the server, which
// verifies the signature and the capture before crediting anything.
(function () {
  "use strict";
  var options = JSON.parse(document.getElementById("checkout-options").textContent);
  var status = document.getElementById("checkout-status");
  var form = document.getElementById("checkout-result");

  function open() {
    if (typeof window.Razorpay !== "function") {
      status.textContent = "Razorpay Checkout could not be loaded (no connection to checkout.razorpay.com?). " +
        "Nothing was charged; try again later or pay by bank transfer.";
      return;
    }
    options.handler = function (response) {
      document.getElementById("razorpay_payment_id").value = response.razorpay_payment_id;
      document.getElementById("razorpay_order_id").value = response.razorpay_order_id;
      document.getElementById("razorpay_signature").value = response.razorpay_signature;
      status.textContent = "Payment done; confirming with the server…";
      form.submit();
    };
    options.modal = {ondismiss: function () { status.textContent = "Payment window closed; nothing was charged."; }};
    var checkout = new window.Razorpay(options);
    checkout.on("payment.failed", function (response) {
      status.textContent = "The payment failed: " + (response.error && response.error.description || "unknown reason") +
        ". Nothing was credited; you can try again.";
    });
    checkout.open();
  }

  // Both scripts are deferred, so Checkout's has loaded (or failed) by now.
  document.getElementById("checkout-open").addEventListener("click", open);
  open();
})();
