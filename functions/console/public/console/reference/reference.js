// The API reference page: draws /openapi.json with Swagger UI (swagger-ui-bundle.js, served
// beside this file; nothing is fetched from elsewhere). Read only: "Try it out" is off, so the
// page never sends a request of the API, neither with a key typed into it nor with the console
// session this origin's cookie may hold.
(function () {
  'use strict';

  function start() {
    const target = document.getElementById('reference');
    if (typeof window.SwaggerUIBundle !== 'function') {
      target.textContent = 'The reference could not be drawn: its script did not load. Read /openapi.json itself.';
      return;
    }
    window.SwaggerUIBundle({
      url: '/openapi.json',
      domNode: target,
      presets: [window.SwaggerUIBundle.presets.apis],
      layout: 'BaseLayout',
      supportedSubmitMethods: [],
      tryItOutEnabled: false,
      validatorUrl: null,
      deepLinking: false,
      docExpansion: 'list',
      defaultModelsExpandDepth: 0,
    });
  }

  document.addEventListener('DOMContentLoaded', start);
})();
