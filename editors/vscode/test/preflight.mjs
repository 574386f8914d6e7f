// npm's pretest: checks once that the server the suite starts is installed (see harness.mjs).

import { requireServer } from './harness.mjs';

const problem = requireServer();
if (problem !== undefined) {
  console.error(problem);
  process.exit(1);
}
