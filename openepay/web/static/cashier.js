// Cashier: count down to expiry, poll the order status, move on once paid.
(function () {
  "use strict";
  var area = document.getElementById("pay-area");
  if (!area) return;
  var statusUrl = area.dataset.statusUrl;
  var returnUrl = area.dataset.returnUrl;
  var deadline = Date.now() + Number(area.dataset.expiresIn) * 1000;
  var remaining = document.getElementById("remaining");
  var state = document.getElementById("state");
  var finished = false;

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function expire() {
    finished = true;
    area.classList.add("expired");
    area.innerHTML = '<p class="message" id="expired">订单已过期，请返回商户网站重新下单</p>';
    state.textContent = "订单已关闭";
    remaining.textContent = "00:00";
  }

  function tick() {
    if (finished) return;
    var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    remaining.textContent = pad(Math.floor(left / 60)) + ":" + pad(left % 60);
    if (left === 0) { poll(); }
  }

  function poll() {
    if (finished) return;
    fetch(statusUrl, { headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data || finished) return;
        if (data.paid) {
          finished = true;
          state.textContent = "支付成功，正在跳转…";
          state.classList.add("paid");
          window.location.href = returnUrl;
        } else if (data.status === "closed") {
          expire();
        }
      })
      .catch(function () { /* transient network error: the next poll retries */ });
  }

  tick();
  setInterval(tick, 1000);
  setInterval(poll, 2000);
  poll();
})();
