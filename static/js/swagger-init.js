// Starts Swagger UI on /docs (a classic script after swagger-ui-bundle.js): the page's
// Content-Security-Policy allows no inline script, so the start-up lives here.
const root = document.getElementById("swagger-ui");

// Swagger UI's text areas (a request body to try out) have no label (axe: label, critical):
// its own TextArea, wrapped to carry one. Its title, when set, says what is wrong with the body.
const labelledTextAreas = (system) => ({
  wrapComponents: {
    TextArea: (Original) => (props) => system.React.createElement(Original, {
      ...props, "aria-label": props["aria-label"] || props.title || "request body",
    }),
  },
});
window.ui = SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  // no links to each operation: Swagger UI puts that link inside the operation's own
  // expand button, a control inside a control (axe: nested-interactive)
  deepLinking: false,
  showExtensions: true,
  validatorUrl: null, // the default would send the schema to validator.swagger.io
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  plugins: [labelledTextAreas],
});
