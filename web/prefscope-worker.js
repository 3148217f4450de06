// A Worker of `prefscope.load({ workers })`: its own copy of the model, embedding the share of
// each batch the calling thread sends it.
import { serveWorker } from "./prefscope.js";

serveWorker(self);
