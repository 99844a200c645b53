// Starts Swagger UI from a JSON config in this tag's data-config attribute, so the docs page
// needs no inline script and its Content-Security-Policy can stay 'self'-only.
(function () {
  "use strict";
  var config = JSON.parse(document.currentScript.getAttribute("data-config"));
  var initOAuth = config.initOAuth;
  delete config.initOAuth;
  if (config.oauth2RedirectPath) {
    config.oauth2RedirectUrl = window.location.origin + config.oauth2RedirectPath;
  }
  delete config.oauth2RedirectPath;
  config.presets = [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset];
  var ui = SwaggerUIBundle(config);
  if (initOAuth) {
    ui.initOAuth(initOAuth);
  }
  window.ui = ui;
})();
