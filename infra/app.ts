/**
 * The CDK app (`npx cdk synth|deploy`): settings from context, one stack, the cdk-nag AWS Solutions checks.
 *
 * Without `CDK_DEFAULT_ACCOUNT`/`CDK_DEFAULT_REGION` (no credentials) the stack is environment-agnostic and
 * still synthesizes; the CLI sets them from the current profile when deploying.
 * @module
 */
import { App, Validations } from 'aws-cdk-lib'
import { AwsSolutionsChecks } from 'cdk-nag'
import { PipelineStack } from './pipeline-stack.js'
import { settingsFromContext } from './settings.js'

const app = new App()
new PipelineStack(app, 'AgeGenderPipeline', {
  description: 'Age/gender estimation: dataset bucket, Batch GPU trainer, predict endpoint',
  settings: settingsFromContext(app.node),
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
})
// any unacknowledged finding fails synthesis (cdk-nag 3 runs as a policy validation plugin)
Validations.of(app).addPlugins(new AwsSolutionsChecks(app))
app.synth()
