/** Renders the showqrcode image: a real baseline JPEG of a QR code, 430x430 like WeChat's. */
import * as QRCode from 'qrcode';
import { encode as encodeJpeg } from 'jpeg-js';

const IMAGE_SIZE_PX = 430;
const QUIET_ZONE_MODULES = 4;
const JPEG_QUALITY = 90;

export function renderQrJpeg(text: string): Buffer {
	const { modules } = QRCode.create(text, { errorCorrectionLevel: 'M' });
	const symbolModules = modules.size + 2 * QUIET_ZONE_MODULES;
	// Whole pixels per module keep edges crisp for decoders; the rest of 430 px becomes extra white margin.
	const moduleSize = Math.max(1, Math.floor(IMAGE_SIZE_PX / symbolModules));
	const size = Math.max(IMAGE_SIZE_PX, symbolModules * moduleSize);
	const offset = Math.floor((size - modules.size * moduleSize) / 2);

	const rgba = Buffer.alloc(size * size * 4, 0xff); // white, opaque
	for (let row = 0; row < modules.size; row++) {
		for (let col = 0; col < modules.size; col++) {
			if (!modules.get(row, col)) continue;
			const top = offset + row * moduleSize;
			const left = offset + col * moduleSize;
			for (let y = top; y < top + moduleSize; y++) {
				const start = (y * size + left) * 4;
				for (let i = start; i < start + moduleSize * 4; i += 4) {
					rgba[i] = 0;
					rgba[i + 1] = 0;
					rgba[i + 2] = 0;
				}
			}
		}
	}
	return encodeJpeg({ data: rgba, width: size, height: size }, JPEG_QUALITY).data;
}
