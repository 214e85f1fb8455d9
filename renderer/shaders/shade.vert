#version 330 core
#extension GL_ARB_shader_viewport_layer_array : require
// The shading pass: instance i covers layer i with one triangle (corners (-1, -1),
// (3, -1) and (-1, 3)), so each pixel of each view is shaded once.

flat out int view;

void main()
{
    view = gl_InstanceID;
    gl_Layer = gl_InstanceID;
    gl_Position = vec4(float((gl_VertexID & 1) * 4 - 1), float((gl_VertexID & 2) * 2 - 1), 0.0, 1.0);
}
