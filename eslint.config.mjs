import { configWithoutCloudSupport } from '@n8n/node-cli/eslint';

export default [
	...configWithoutCloudSupport,
	{
		// fast-xml-parser is a runtime dependency: the trigger must parse WeChat's raw XML itself because
		// n8n's own XML body parser lower-cases tag names. That rules out n8n Cloud, which this package
		// does not target anyway (WeChat's IP allow-list needs a self-hosted n8n with a fixed egress IP).
		files: ['package.json'],
		rules: { '@n8n/community-nodes/no-runtime-dependencies': 'off' },
	},
];
