/**
 * The CDK app (`npx cdk synth|deploy`): settings from context, one stack, the cdk-nag AWS Solutions checks.
 *
 * The stack is environment-agnostic unless `-c account=… -c region=…` name one: the template then holds no
 * account or region (`AWS::Region` and friends resolve at deploy time), so a synth without credentials bakes
 * in no guess. (The CDK CLI sets `CDK_DEFAULT_REGION` to us-east-1 when it finds none; it is not used.)
 * @module
 */
import { createApp } from './pipeline-app.js'

createApp().synth()
