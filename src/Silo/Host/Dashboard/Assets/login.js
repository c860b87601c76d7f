'use strict';
// Fills in where to go after signing in, and says so when the last attempt had the wrong token.
(() => {
  const query = new URLSearchParams(window.location.search);
  document.getElementById('return').value = query.get('return') || '/';
  document.getElementById('error').hidden = query.get('failed') !== '1';
})();
