// Validates the OpenAPI document at argv[2] (a file path) against the
// OpenAPI 3.1 schema and resolves every $ref; prints "valid" or the errors.
"use strict";
const SwaggerParser = require("@apidevtools/swagger-parser");
const fs = require("fs");

const doc = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
SwaggerParser.validate(doc)
  .then((api) => {
    console.log("valid " + api.openapi + " " + Object.keys(api.paths).length + " paths");
  })
  .catch((err) => {
    console.error(err.message || String(err));
    if (err.details) console.error(JSON.stringify(err.details, null, 2));
    process.exit(1);
  });
