// Read by puppeteer (cosmiconfig) during `npm ci` and at runtime: never download a browser.
// @asyncapi/html-template only needs puppeteer for its optional PDF output, unused here.
module.exports = { skipDownload: true };
