/** Renders the showqrcode image: a real baseline JPEG of a QR code, 430x430 like WeChat's. */
import * as QRCode from 'qrcode';
import { encodeUniformBlockJpeg } from './jpeg';

const IMAGE_SIZE_PX = 430;
const QUIET_ZONE_MODULES = 4;
const JPEG_BLOCK_PX = 8;
const JPEG_QUALITY = 90;

export function renderQrJpeg(text: string): Buffer {
	const { modules } = QRCode.create(text, { errorCorrectionLevel: 'M' });
	const symbolModules = modules.size + 2 * QUIET_ZONE_MODULES;
	// Modules are whole JPEG blocks on the block grid, so every 8x8 block is uniformly black or white.
	const blocksPerModule = Math.max(1, Math.floor(IMAGE_SIZE_PX / (symbolModules * JPEG_BLOCK_PX)));
	const moduleBlocks = modules.size * blocksPerModule;
	const size = Math.max(IMAGE_SIZE_PX, symbolModules * blocksPerModule * JPEG_BLOCK_PX);
	// Centre the symbol, rounded down to the block grid; the quiet zone still gets >= 4 modules.
	const offsetBlocks = Math.floor((Math.ceil(size / JPEG_BLOCK_PX) - moduleBlocks) / 2);

	return encodeUniformBlockJpeg(
		size,
		size,
		(blockX, blockY) => {
			const col = blockX - offsetBlocks;
			const row = blockY - offsetBlocks;
			if (col < 0 || row < 0 || col >= moduleBlocks || row >= moduleBlocks) return 255;
			const dark = modules.get(Math.floor(row / blocksPerModule), Math.floor(col / blocksPerModule));
			return dark ? 0 : 255;
		},
		JPEG_QUALITY,
	);
}
