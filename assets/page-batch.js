// Batch operations need the batch API (POST /api/client-certs/batch), which this build does not have yet.
import { h, clear } from './ui.js';

export async function render(main) {
  document.title = 'Batch · CertMate';
  clear(main).append(h('h1', {}, 'Batch'), h('p', {}, 'Batch operations are not available in this build yet.'));
}
