/**
 * A minimal baseline (SOF0) grayscale JPEG encoder for images made of uniform 8x8 blocks.
 *
 * Why not jpeg-js's encode(): it rebuilds its lookup tables on every call (~45 ms of blocking CPU
 * per image), which would stall every other request whenever a benchmark fetches a new QR image.
 * A QR code drawn with 8-pixel modules on an 8-pixel grid has only uniform blocks, whose DCT is a
 * lone DC coefficient, so each block is just "DC difference + end-of-block" (well under 1 ms per image).
 * The output is a standard JFIF file that any decoder reads (the tests decode it with jpeg-js + jsQR).
 */

/** Annex K.3 typical Huffman tables (luminance): code counts per length 1..16, then symbols. */
const DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_VALUES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_BITS = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
// prettier-ignore
const AC_VALUES = [
	0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
	0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
	0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
	0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
	0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
	0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
	0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
	0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
	0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
	0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
	0xf9, 0xfa,
];
/** Annex K.1 luminance quantization table (zigzag order), to be scaled by quality. */
// prettier-ignore
const LUMA_QUANT_ZIGZAG = [
	16, 11, 12, 14, 12, 10, 16, 14, 13, 14, 18, 17, 16, 19, 24, 40,
	26, 24, 22, 22, 24, 49, 35, 37, 29, 40, 58, 51, 61, 60, 57, 51,
	56, 55, 64, 72, 92, 78, 64, 68, 87, 69, 55, 56, 80, 109, 81, 87,
	95, 98, 103, 104, 103, 62, 77, 113, 121, 112, 100, 120, 92, 101, 103, 99,
];
const END_OF_BLOCK = 0x00;

interface HuffmanCode {
	code: number;
	length: number;
}

/** Annex C: canonical codes from the count-per-length list. */
function buildHuffmanCodes(bits: number[], values: number[]): Map<number, HuffmanCode> {
	const codes = new Map<number, HuffmanCode>();
	let code = 0;
	let index = 0;
	for (let length = 1; length <= 16; length++) {
		for (let i = 0; i < bits[length - 1]; i++) codes.set(values[index++], { code: code++, length });
		code <<= 1;
	}
	return codes;
}

const DC_CODES = buildHuffmanCodes(DC_BITS, DC_VALUES);
const AC_CODES = buildHuffmanCodes(AC_BITS, AC_VALUES);

/** Standard IJG quality scaling. */
function quantTable(quality: number): number[] {
	const q = Math.min(100, Math.max(1, Math.round(quality)));
	const scale = q < 50 ? Math.floor(5000 / q) : 200 - q * 2;
	return LUMA_QUANT_ZIGZAG.map((base) => Math.min(255, Math.max(1, Math.floor((base * scale + 50) / 100))));
}

class BitWriter {
	private readonly bytes: number[] = [];
	private current = 0;
	private filled = 0;

	write(value: number, length: number): void {
		for (let bit = length - 1; bit >= 0; bit--) {
			this.current = (this.current << 1) | ((value >> bit) & 1);
			if (++this.filled === 8) this.flushByte();
		}
	}

	/** Pads the last byte with 1-bits, as the standard asks. */
	finish(): number[] {
		if (this.filled > 0) this.write(0xff, 8 - this.filled);
		return this.bytes;
	}

	private flushByte(): void {
		this.bytes.push(this.current);
		if (this.current === 0xff) this.bytes.push(0x00); // byte stuffing
		this.current = 0;
		this.filled = 0;
	}
}

function segment(marker: number, payload: number[]): number[] {
	const length = payload.length + 2;
	return [0xff, marker, length >> 8, length & 0xff, ...payload];
}

function huffmanTableSegment(tableClassAndId: number, bits: number[], values: number[]): number[] {
	return segment(0xc4, [tableClassAndId, ...bits, ...values]);
}

/**
 * Encodes a width x height grayscale image in which block (bx, by) -- pixels [8bx, 8bx+8) x [8by, 8by+8) --
 * has the uniform luma `blockLuma(bx, by)` (0 black .. 255 white).
 */
export function encodeUniformBlockJpeg(
	width: number,
	height: number,
	blockLuma: (blockX: number, blockY: number) => number,
	quality = 90,
): Buffer {
	const quant = quantTable(quality);
	const header = [
		0xff, 0xd8, // SOI
		...segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0x00, 1, 1, 0, 0, 1, 0, 1, 0, 0]), // APP0 JFIF 1.01, 1:1 aspect
		...segment(0xdb, [0x00, ...quant]), // DQT: 8-bit table 0
		...segment(0xc0, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0]), // SOF0, 1 component
		...huffmanTableSegment(0x00, DC_BITS, DC_VALUES),
		...huffmanTableSegment(0x10, AC_BITS, AC_VALUES),
		...segment(0xda, [1, 1, 0x00, 0, 63, 0]), // SOS: component 1 uses DC/AC tables 0
	];

	const eob = AC_CODES.get(END_OF_BLOCK);
	if (!eob) throw new Error('AC table lacks end-of-block');
	const writer = new BitWriter();
	let previousDc = 0;
	const blocksWide = Math.ceil(width / 8);
	const blocksHigh = Math.ceil(height / 8);
	for (let by = 0; by < blocksHigh; by++) {
		for (let bx = 0; bx < blocksWide; bx++) {
			// For a uniform block the forward DCT leaves only F(0,0) = 8 * (luma - 128).
			const luma = Math.min(255, Math.max(0, blockLuma(bx, by)));
			const dc = Math.round((8 * (luma - 128)) / quant[0]);
			const diff = dc - previousDc;
			previousDc = dc;
			const magnitude = Math.abs(diff);
			const category = magnitude === 0 ? 0 : Math.floor(Math.log2(magnitude)) + 1;
			const dcCode = DC_CODES.get(category);
			if (!dcCode) throw new Error(`DC difference ${diff} out of range`);
			writer.write(dcCode.code, dcCode.length);
			// Negative differences are sent as diff - 1 in `category` bits (ones' complement form).
			if (category > 0) writer.write(diff < 0 ? diff + (1 << category) - 1 : diff, category);
			writer.write(eob.code, eob.length);
		}
	}
	return Buffer.from([...header, ...writer.finish(), 0xff, 0xd9]); // EOI
}
